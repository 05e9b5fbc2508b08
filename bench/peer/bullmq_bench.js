// The job workloads of bench/jobs.py (and kue_bench.js) on BullMQ, written the BullMQ
// way. Run by bench/run.py with node, from a folder where npm installed bullmq.
//   node bullmq_bench.js <redis port> <db> enqueue_serial <n>   Queue.add, awaited one by one
//   node bullmq_bench.js <redis port> <db> enqueue_burst <n>    Queue.addBulk, all at once
//   node bullmq_bench.js <redis port> <db> processor <c>        a Worker of concurrency c
//   node bullmq_bench.js <redis port> <db> end_to_end <n>       addBulk, then QueueEvents hears
//                                                               n 'completed'
// A creator prints {"seconds": ...}; a processor prints "ready", then works until SIGTERM.
// BULLMQ_EVENTS_MAXLEN, if set, replaces the events stream's length (see EVENTS_MAXLEN).
'use strict';
const { Queue, QueueEvents, Worker } = require('bullmq');

const [port, db, workload, count] = [
  Number(process.argv[2]),
  Number(process.argv[3]),
  process.argv[4],
  Number(process.argv[5]),
];
// BullMQ on a database of its own: the other stacks never see its keys (bull:bench:*).
const connection = { host: '127.0.0.1', port, db, maxRetriesPerRequest: null };
const QUEUE = 'bench';
// Each job writes about 4 entries to the queue's events stream, which BullMQ trims to
// ~10,000 by default: a listener that falls behind loses 'completed' events (measured:
// 11-122 of 5,000 lost in 4 of 5 runs). Long enough for the end-to-end run to lose none.
const EVENTS_MAXLEN = Number(process.env.BULLMQ_EVENTS_MAXLEN || 100000);
const data = (n) => ({ phoneNumber: '4153518780', message: `This is the code ${n}` });
const jobs = (n) => Array.from({ length: n }, (_, i) => ({ name: QUEUE, data: data(i) }));

async function openQueue() {
  const queue = new Queue(QUEUE, { connection, streams: { events: { maxLen: EVENTS_MAXLEN } } });
  await queue.waitUntilReady();
  return queue;
}

function done(start, ...open) {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ seconds }));
  Promise.all(open.map((each) => each.close())).then(() => process.exit(0));
}

async function enqueueSerial(n) {
  const queue = await openQueue();
  const start = process.hrtime.bigint();
  for (const job of jobs(n)) await queue.add(job.name, job.data); // eslint-disable-line no-await-in-loop
  done(start, queue);
}

async function enqueueBurst(n) {
  const queue = await openQueue();
  const start = process.hrtime.bigint();
  await queue.addBulk(jobs(n));
  done(start, queue);
}

async function processor(concurrency) {
  const worker = new Worker(QUEUE, async () => {}, { connection, concurrency });
  await worker.waitUntilReady();
  console.log('ready');
  process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
}

async function endToEnd(n) {
  const queue = await openQueue();
  // From the stream's start: the run's first events are heard even if they come
  // before the listener's first read.
  const events = new QueueEvents(QUEUE, { connection, lastEventId: '0-0' });
  await events.waitUntilReady();
  let completed = 0;
  const start = process.hrtime.bigint();
  events.on('completed', () => {
    completed += 1;
    if (completed === n) done(start, events, queue);
  });
  await queue.addBulk(jobs(n));
}

const workloads = {
  enqueue_serial: enqueueSerial,
  enqueue_burst: enqueueBurst,
  processor,
  end_to_end: endToEnd,
};
workloads[workload](count).catch((error) => {
  console.error(error);
  process.exit(1);
});
