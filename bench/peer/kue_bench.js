// The peer of bench/jobs.py: the same job workloads on Kue 0.11.6, as the course's JS
// solution uses it. Run by bench/run.py with node, from a folder where npm installed kue.
//   node kue_bench.js <redis port> enqueue_serial <n>   queue n jobs, one after another
//   node kue_bench.js <redis port> enqueue_burst <n>    queue n jobs at once (as 7-job_creator)
//   node kue_bench.js <redis port> enqueue_waiting <n>  queue n jobs at once that each wait 20 ms
//   node kue_bench.js <redis port> processor <c>        work the queue, c jobs at a time
//   node kue_bench.js <redis port> end_to_end <n>       queue n jobs, wait for n 'complete'
// A creator prints {"seconds": ...}; a processor prints "ready", then works until SIGTERM.
'use strict';
const kue = require('kue');

const [port, workload, count] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const queue = kue.createQueue({ redis: { host: '127.0.0.1', port } });
const TYPE = 'bench';
const data = (n) => ({ phoneNumber: '4153518780', message: `This is the code ${n}` });

function save(n, wait = 0) {
  return new Promise((resolve, reject) => {
    const job = queue
      .create(TYPE, { ...data(n), wait })
      .save((error) => (error ? reject(error) : resolve(job)));
  });
}

function done(start) {
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(JSON.stringify({ seconds }));
  queue.shutdown(1000, () => process.exit(0));
}

async function enqueueSerial(n) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i += 1) await save(i); // eslint-disable-line no-await-in-loop
  done(start);
}

async function enqueueBurst(n) {
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => save(i)));
  done(start);
}

async function enqueueWaiting(n) {
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => save(i, 20)));
  done(start);
}

// A job waits job.data.wait ms (the waiting jobs: 20, a gateway's call), else none.
function processor(concurrency) {
  queue.process(TYPE, concurrency, (job, jobDone) =>
    job.data.wait ? setTimeout(jobDone, job.data.wait) : jobDone(),
  );
  console.log('ready');
  process.on('SIGTERM', () => queue.shutdown(5000, () => process.exit(0)));
}

function endToEnd(n) {
  const start = process.hrtime.bigint();
  let completed = 0;
  for (let i = 0; i < n; i += 1) {
    const job = queue.create(TYPE, data(i)).save();
    job.on('complete', () => {
      completed += 1;
      if (completed === n) done(start);
    });
  }
}

const workloads = {
  enqueue_serial: enqueueSerial,
  enqueue_burst: enqueueBurst,
  enqueue_waiting: enqueueWaiting,
  processor,
  end_to_end: endToEnd,
};
workloads[workload](count);
