// The job workloads of bench/jobs.py (and kue_bench.js) on BullMQ, written the BullMQ
// way. Run by bench/run.py with node, from a folder where npm installed bullmq.
//   node bullmq_bench.js <redis port> <db> enqueue_serial <n>   Queue.add, awaited one by one
//   node bullmq_bench.js <redis port> <db> enqueue_burst <n>    Queue.addBulk, all at once
//   node bullmq_bench.js <redis port> <db> enqueue_waiting <n>  addBulk of jobs that each wait 20 ms
//   node bullmq_bench.js <redis port> <db> processor <c>        a Worker of concurrency c
//   node bullmq_bench.js <redis port> <db> end_to_end <n>       addBulk, then QueueEvents hears
//                                                               n 'completed'
//   node bullmq_bench.js <redis port> <db> enqueue_delayed <n>  addBulk, each {delay: 1000}
//   node bullmq_bench.js <redis port> <db> retried_end_to_end <n>  addBulk of jobs that fail
//                                                               their first try ({attempts: 2}),
//                                                               then QueueEvents hears n 'completed'
// A creator prints {"seconds": ...} (enqueue_delayed adds "due", when its jobs are due, in
// seconds since the epoch); a processor prints "ready", then works until SIGTERM.
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
const DELAY_MS = 1000;
// The retried jobs' name: the processor fails their first try (bench/jobs.py's job of the
// same name does so on the port).
const FAIL_FIRST_TRY = 'fail_first_try';
// The waiting jobs' name: the processor waits 20 ms in each (a gateway's call).
const WAIT_20MS = 'wait_20ms';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const data = (n) => ({ phoneNumber: '4153518780', message: `This is the code ${n}` });
const jobs = (n, name = QUEUE, opts = undefined) =>
  Array.from({ length: n }, (_, i) => ({ name, data: data(i), opts }));

async function openQueue() {
  const queue = new Queue(QUEUE, { connection, streams: { events: { maxLen: EVENTS_MAXLEN } } });
  await queue.waitUntilReady();
  return queue;
}

function done(start, ...open) {
  finish({ seconds: Number(process.hrtime.bigint() - start) / 1e9 }, ...open);
}

function finish(measured, ...open) {
  console.log(JSON.stringify(measured));
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

// Does nothing, but for a retried job's first try, which fails (BullMQ counts a job's
// attempts as they end: 0 made on the first).
async function handle(job) {
  if (job.name === FAIL_FIRST_TRY && job.attemptsMade === 0) throw new Error('The first try fails');
  if (job.name === WAIT_20MS) await sleep(20);
}

async function enqueueWaiting(n) {
  const queue = await openQueue();
  const start = process.hrtime.bigint();
  await queue.addBulk(jobs(n, WAIT_20MS));
  done(start, queue);
}

async function processor(concurrency) {
  const worker = new Worker(QUEUE, handle, { connection, concurrency });
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

// Due a second after the call, by the wall clock (the harness compares the jobs' start
// dates with it).
async function enqueueDelayed(n) {
  const queue = await openQueue();
  const called = Date.now();
  const start = process.hrtime.bigint();
  await queue.addBulk(jobs(n, QUEUE, { delay: DELAY_MS }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  finish({ seconds, due: (called + DELAY_MS) / 1000 }, queue);
}

async function retriedEndToEnd(n) {
  const queue = await openQueue();
  const events = new QueueEvents(QUEUE, { connection, lastEventId: '0-0' });
  await events.waitUntilReady();
  let completed = 0;
  const start = process.hrtime.bigint();
  events.on('completed', () => {
    completed += 1;
    if (completed === n) done(start, events, queue);
  });
  await queue.addBulk(jobs(n, FAIL_FIRST_TRY, { attempts: 2 }));
}

const workloads = {
  enqueue_serial: enqueueSerial,
  enqueue_burst: enqueueBurst,
  enqueue_waiting: enqueueWaiting,
  processor,
  end_to_end: endToEnd,
  enqueue_delayed: enqueueDelayed,
  retried_end_to_end: retriedEndToEnd,
};
workloads[workload](count).catch((error) => {
  console.error(error);
  process.exit(1);
});
