// StageThreads (csrc/core/stage_threads.h): producer -> caller -> consumer in order with bounded queues,
// a producer's or consumer's exception reaches the calling thread with its message, and the destructor
// stops and joins both threads when the caller leaves with an exception.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "csrc/core/stage_threads.h"

using flashvsr::StageThreads;

namespace {

thread_local bool t_in_scope = false;

// Items 0..n-1, then -1 (the last).
struct Counter {
    int n, next = 0;
    std::atomic<int>* produced;
    int operator()() {
        ++*produced;
        return next < n ? next++ : -1;
    }
};
const auto is_last = [](int x) { return x < 0; };

}  // namespace

TEST(StageThreads, InOrderBoundedAndInsideScope) {
    for (const int depth : {1, 2, 3}) {
        SCOPED_TRACE(depth);
        std::atomic<int> produced{0};
        std::vector<int> got;
        std::atomic<bool> scoped{true};
        {
            StageThreads<int, int> st(depth);
            ASSERT_TRUE(st.threaded());
            Counter c{200, 0, &produced};
            st.start(
                [&]() {
                    if (!t_in_scope) {
                        scoped = false;
                    }
                    return c();
                },
                is_last,
                [&](int& v) {
                    if (!t_in_scope) {
                        scoped = false;
                    }
                    got.push_back(v);
                },
                [](const std::function<void()>& body) {
                    t_in_scope = true;
                    body();
                });
            while (true) {
                const int x = st.pop_input();
                st.push_output(x < 0 ? x : 3 * x);
                if (x < 0) {
                    break;
                }
            }
            st.finish();
            EXPECT_LE(st.max_queued_in(), static_cast<size_t>(depth));
            EXPECT_LE(st.max_queued_out(), static_cast<size_t>(depth));
        }
        ASSERT_EQ(got.size(), 201u);
        for (int i = 0; i < 200; ++i) {
            ASSERT_EQ(got[static_cast<size_t>(i)], 3 * i);
        }
        EXPECT_EQ(got.back(), -1);
        EXPECT_TRUE(scoped.load());
        EXPECT_FALSE(t_in_scope);  // the calling thread was never inside the scope
    }
    EXPECT_FALSE((StageThreads<int, int>(0).threaded()));
}

TEST(StageThreads, ProducerErrorReachesCallerAfterItsItems) {
    StageThreads<int, int> st(2);
    int next = 0;
    st.start(
        [&]() -> int {
            if (next == 3) {
                throw std::runtime_error("input is truncated or corrupt");
            }
            return next++;
        },
        is_last, [](int&) {});
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(st.pop_input(), i);
    }
    try {
        st.pop_input();
        ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "input is truncated or corrupt");
    }
}

TEST(StageThreads, ConsumerErrorReachesCallerAndStopsProducer) {
    std::atomic<int> produced{0};
    StageThreads<int, int> st(2);
    Counter c{1000000, 0, &produced};
    st.start([&]() { return c(); }, is_last,
             [](int& v) {
                 if (v == 5) {
                     throw std::invalid_argument("cannot write the output");
                 }
             });
    int pushed = 0;
    try {
        while (true) {
            st.push_output(st.pop_input());
            ++pushed;
        }
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "cannot write the output");
    }
    // The consumer failed on item 5: the caller learns it within the out-queue's depth (+ the one in hand).
    EXPECT_GE(pushed, 6);
    EXPECT_LE(pushed, 6 + 2 + 1);
    // push_output joined both threads before rethrowing: the producer stopped a queue's depth ahead.
    const int p = produced.load();
    EXPECT_LE(p, pushed + 2 + 2);
    EXPECT_EQ(produced.load(), p);
}

TEST(StageThreads, CallerExceptionStopsAndJoinsBlockedWorkers) {
    std::atomic<int> produced{0}, consumed{0};
    try {
        StageThreads<int, int> st(2);
        Counter c{1000000, 0, &produced};
        st.start([&]() { return c(); }, is_last, [&](int&) { ++consumed; });
        st.push_output(st.pop_input());
        // The producer now blocks on a full in-queue, the consumer on an empty out-queue.
        throw std::runtime_error("engine failed");
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "engine failed");
    }
    // Reached: the destructor woke and joined both threads.
    EXPECT_LE(produced.load(), 1 + 2 + 1);
    EXPECT_LE(consumed.load(), 1);
}
