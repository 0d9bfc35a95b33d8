// Run natively and under LD_PRELOAD=libgreenify.so by cdylib-tests/tests/languages.rs; both
// runs must print the same lines, so it prints only facts that do not depend on scheduling.
// Each section forces real waits (sleeps holding a lock, waiters ahead of their wakers) so
// that green threads switch in the middle of it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <future>
#include <latch>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

static constexpr int kThreads = 4;

static std::mutex g_log_mutex;
static std::vector<int> g_constructed, g_destroyed;

struct Tracker {
    int owner = -1;
    Tracker() {
        std::lock_guard<std::mutex> l(g_log_mutex);
        g_constructed.push_back(0);
    }
    ~Tracker() {
        std::lock_guard<std::mutex> l(g_log_mutex);
        g_destroyed.push_back(owner);
    }
};

thread_local Tracker t_tracker;
thread_local long t_counter = 0;

static void thread_locals() {
    std::vector<std::thread> threads;
    std::vector<long> counts(kThreads);
    for (int i = 0; i < kThreads; i++) {
        threads.emplace_back([i, &counts] {
            t_tracker.owner = i;
            for (int k = 0; k < 50; k++) {
                ++t_counter;
                // Another thread runs its own increments here.
                std::this_thread::sleep_for(200us);
            }
            counts[i] = t_counter;
        });
    }
    for (auto &t : threads) t.join();
    std::vector<int> destroyed;
    {
        std::lock_guard<std::mutex> l(g_log_mutex);
        destroyed = g_destroyed;
    }
    std::sort(destroyed.begin(), destroyed.end());
    std::printf("thread_local counters:");
    for (long c : counts) std::printf(" %ld", c);
    std::printf("\nmain's thread_local counter: %ld\n", t_counter);
    std::printf("thread_local constructed %zu, destroyed for:", g_constructed.size());
    for (int d : destroyed) std::printf(" %d", d);
    std::printf("\n");
}

static void distinct_ids() {
    // All alive at once (the latch), so their ids must differ.
    std::latch all_started(kThreads);
    std::mutex m;
    std::set<std::thread::id> ids;
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++) {
        threads.emplace_back([&] {
            all_started.arrive_and_wait();
            std::lock_guard<std::mutex> l(m);
            ids.insert(std::this_thread::get_id());
        });
    }
    for (auto &t : threads) t.join();
    std::printf("distinct std::thread::id: %zu (main's differs: %d)\n", ids.size(),
                ids.count(std::this_thread::get_id()) == 0);
}

static void contended_mutex() {
    std::mutex m;
    long total = 0;
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; i++) {
        threads.emplace_back([&] {
            for (int round = 0; round < 20; round++) {
                std::lock_guard<std::mutex> l(m);
                ++total;
                // Sleep holding the lock: the others block on it.
                if (round % 4 == 0) std::this_thread::sleep_for(1ms);
            }
            for (int k = 0; k < 10000; k++) {
                std::lock_guard<std::mutex> l(m);
                ++total;
            }
        });
    }
    for (auto &t : threads) t.join();
    std::printf("mutex total: %ld\n", total);
}

static void condition_variable_queue() {
    std::mutex m;
    std::condition_variable cv;
    std::deque<int> queue;
    std::vector<std::future<long>> consumers;
    for (int c = 0; c < 2; c++) {
        consumers.push_back(std::async(std::launch::async, [&] {
            long sum = 0;
            for (;;) {
                std::unique_lock<std::mutex> l(m);
                cv.wait(l, [&] { return !queue.empty(); });
                int v = queue.front();
                queue.pop_front();
                if (v < 0) return sum;
                sum += v;
            }
        }));
    }
    // The consumers are waiting before anything arrives.
    std::this_thread::sleep_for(5ms);
    for (int v = 1; v <= 100; v++) {
        {
            std::lock_guard<std::mutex> l(m);
            queue.push_back(v);
        }
        cv.notify_one();
        if (v % 25 == 0) std::this_thread::sleep_for(1ms);
    }
    {
        std::lock_guard<std::mutex> l(m);
        queue.push_back(-1);
        queue.push_back(-1);
    }
    cv.notify_all();
    long sum = 0;
    for (auto &f : consumers) sum += f.get();
    std::printf("condition_variable queue sum: %ld\n", sum);
}

static void async_futures() {
    std::vector<std::future<long>> parts;
    for (long p = 0; p < kThreads; p++) {
        parts.push_back(std::async(std::launch::async, [p] {
            std::this_thread::sleep_for(1ms);
            long s = 0;
            for (long x = p * 1000; x < (p + 1) * 1000; x++) s += x;
            return s;
        }));
    }
    long total = 0;
    for (auto &f : parts) total += f.get();
    std::promise<int> promise;
    std::future<int> later = promise.get_future();
    std::thread setter([&] {
        std::this_thread::sleep_for(2ms);
        promise.set_value(42);
    });
    int got = later.get();
    setter.join();
    std::printf("async sum: %ld, promise value: %d\n", total, got);
}

static void atomic_wait_notify() {
    // C++20 atomic wait/notify: libstdc++ waits with the futex system call.
    std::atomic<int> stage{0};
    std::atomic<int> woken{0};
    std::vector<std::thread> waiters;
    for (int i = 0; i < kThreads; i++) {
        waiters.emplace_back([&] {
            stage.wait(0);
            woken.fetch_add(1);
        });
    }
    std::this_thread::sleep_for(5ms);
    stage.store(1);
    stage.notify_all();
    for (auto &t : waiters) t.join();
    // A ping-pong: main moves the ball from even to odd, the other thread from odd to even;
    // each waits while the value is not its turn.
    std::atomic<int> ball{0};
    auto play = [&ball](int first) {
        for (int turn = first; turn < 200; turn += 2) {
            for (int v = ball.load(); v != turn; v = ball.load()) ball.wait(v);
            ball.store(turn + 1);
            ball.notify_one();
        }
    };
    std::thread other(play, 1);
    play(0);
    other.join();
    std::printf("atomic wait: %d woken, ping-pong ended at %d\n", woken.load(), ball.load());
}

int main() {
    thread_locals();
    distinct_ids();
    contended_mutex();
    condition_variable_queue();
    async_futures();
    atomic_wait_notify();
    std::printf("done\n");
    return 0;
}
