// Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs; both
// runs must print the same lines, so it prints only facts that do not depend on scheduling.
// The JVM's own threads (GC, compiler, finalizer, ...) become green threads too; each section
// makes the program's threads wait on each other.
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;

public class Threads {
    static final int THREADS = 4;
    static long counter = 0;
    static final Object monitor = new Object();
    static boolean ready = false;

    public static void main(String[] args) throws Exception {
        // synchronized, with the holder sleeping inside.
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < THREADS; i++) {
            Thread t = new Thread(() -> {
                for (int round = 0; round < 20; round++) {
                    synchronized (monitor) {
                        counter++;
                        if (round % 5 == 0) sleep(1);
                    }
                }
                for (int k = 0; k < 10000; k++) {
                    synchronized (monitor) {
                        counter++;
                    }
                }
            }, "sync-" + i);
            threads.add(t);
            t.start();
        }
        for (Thread t : threads) t.join();
        System.out.println("synchronized total: " + counter);

        // wait/notify: the waiters wait before the notifier sets the flag.
        CountDownLatch waiting = new CountDownLatch(THREADS);
        List<Thread> waiters = new ArrayList<>();
        int[] woken = {0};
        for (int i = 0; i < THREADS; i++) {
            Thread t = new Thread(() -> {
                synchronized (monitor) {
                    waiting.countDown();
                    while (!ready) {
                        try {
                            monitor.wait();
                        } catch (InterruptedException e) {
                            throw new RuntimeException(e);
                        }
                    }
                    woken[0]++;
                }
            });
            waiters.add(t);
            t.start();
        }
        waiting.await();
        synchronized (monitor) {
            ready = true;
            monitor.notifyAll();
        }
        for (Thread t : waiters) t.join();
        System.out.println("wait/notify woke: " + woken[0]);

        // ThreadLocal values stay per thread.
        ThreadLocal<Integer> local = ThreadLocal.withInitial(() -> -1);
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        List<Future<Integer>> locals = new ArrayList<>();
        for (int i = 0; i < THREADS * 2; i++) {
            final int v = i;
            locals.add(pool.submit(() -> {
                local.set(v);
                sleep(2);
                return local.get() == v ? 1 : 0;
            }));
        }
        int kept = 0;
        for (Future<Integer> f : locals) kept += f.get();
        System.out.println("ThreadLocal kept: " + kept + " of " + THREADS * 2);

        // An ExecutorService computing a sum in parts.
        List<Future<Long>> parts = new ArrayList<>();
        for (int p = 0; p < 16; p++) {
            final long from = p * 100_000L;
            parts.add(pool.submit(() -> {
                long s = 0;
                for (long x = from; x < from + 100_000L; x++) s += x % 7;
                return s;
            }));
        }
        long sum = 0;
        for (Future<Long> f : parts) sum += f.get();
        System.out.println("executor sum: " + sum);

        // A bounded queue makes its producer wait; a ReentrantLock is contended.
        BlockingQueue<Integer> queue = new ArrayBlockingQueue<>(2);
        Future<Long> consumer = pool.submit(() -> {
            long s = 0;
            for (int v; (v = queue.take()) >= 0; ) s += v;
            return s;
        });
        for (int v = 1; v <= 100; v++) queue.put(v);
        queue.put(-1);
        ReentrantLock lock = new ReentrantLock();
        long[] locked = {0};
        List<Future<?>> lockers = new ArrayList<>();
        for (int i = 0; i < THREADS; i++) {
            lockers.add(pool.submit(() -> {
                for (int k = 0; k < 1000; k++) {
                    lock.lock();
                    try {
                        locked[0]++;
                        if (k % 250 == 0) sleep(1);
                    } finally {
                        lock.unlock();
                    }
                }
            }));
        }
        for (Future<?> f : lockers) f.get();
        System.out.println("queue sum: " + consumer.get() + ", lock total: " + locked[0]);
        pool.shutdown();
        System.out.println("pool terminated: " + pool.awaitTermination(30, TimeUnit.SECONDS));
        System.out.println("done");
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            throw new RuntimeException(e);
        }
    }
}
