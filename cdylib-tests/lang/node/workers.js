// Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs; both
// runs must print the same lines, so it prints only facts that do not depend on scheduling.
// Each worker_threads Worker is an OS thread with its own V8 isolate (greenify makes it a
// green thread). The workers take turns through a SharedArrayBuffer, waiting in Atomics.wait
// for theirs, so every isolate is left and resumed many times while it allocates (and
// collects garbage) and posts messages back.
'use strict';
const { Worker, isMainThread, parentPort, workerData, threadId } = require('worker_threads');

const WORKERS = 3;
const ROUNDS = 30;

if (isMainThread) {
  // [0]: whose turn (turn % WORKERS), [1]: rounds done.
  const shared = new Int32Array(new SharedArrayBuffer(8));
  const sums = new Array(WORKERS).fill(0);
  const ids = new Set();
  let messages = 0;
  let exited = 0;
  for (let i = 0; i < WORKERS; i++) {
    const w = new Worker(__filename, { workerData: { index: i, shared } });
    w.on('message', (m) => {
      messages++;
      sums[m.index] += m.sum;
      ids.add(m.threadId);
    });
    w.on('error', (e) => {
      console.log(`worker ${i} error: ${e}`);
      process.exitCode = 1;
    });
    w.on('exit', (code) => {
      if (code !== 0) console.log(`worker ${i} exit code ${code}`);
      if (++exited === WORKERS) {
        console.log(`messages: ${messages}, rounds done: ${Atomics.load(shared, 1)}`);
        console.log(`sums: ${sums.join(' ')}`);
        console.log(`distinct worker threadIds: ${ids.size}`);
        console.log('done');
      }
    });
  }
} else {
  const { index, shared } = workerData;
  for (let round = 0; round < ROUNDS; round++) {
    for (let turn = Atomics.load(shared, 0); turn % WORKERS !== index; turn = Atomics.load(shared, 0)) {
      Atomics.wait(shared, 0, turn);
    }
    const objects = [];
    for (let k = 0; k < 20000; k++) objects.push({ k, s: `x${k}` });
    const sum = objects.reduce((s, o) => s + (o.k % 7) + o.s.length, 0);
    parentPort.postMessage({ index, sum, threadId });
    Atomics.add(shared, 1, 1);
    Atomics.add(shared, 0, 1);
    Atomics.notify(shared, 0);
  }
}
