// BoundedQueue (csrc/core/bounded_queue.h): FIFO order across threads, the capacity is never exceeded,
// close/cancel wake a blocked pop and a blocked push, a producer's exception reaches the consumer after the
// items pushed before it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "csrc/core/bounded_queue.h"

using flashvsr::BoundedQueue;
using namespace std::chrono_literals;

TEST(BoundedQueue, FifoOrderAndCapacityAcrossThreads) {
    BoundedQueue<std::unique_ptr<int>> q(2);  // move-only items work
    constexpr int kN = 2000;
    std::thread producer([&] {
        for (int i = 0; i < kN; ++i) {
            ASSERT_TRUE(q.push(std::make_unique<int>(i)));
        }
        q.close();
    });
    std::vector<int> got;
    size_t max_seen = 0;
    while (auto v = q.pop()) {
        got.push_back(**v);
        max_seen = std::max(max_seen, q.size());
        if (got.size() % 97 == 0) {
            std::this_thread::sleep_for(100us);  // let the producer fill the queue
        }
    }
    producer.join();
    ASSERT_EQ(got.size(), static_cast<size_t>(kN));
    for (int i = 0; i < kN; ++i) {
        ASSERT_EQ(got[static_cast<size_t>(i)], i);
    }
    EXPECT_EQ(q.max_size(), 2u);  // it did fill up, and never past the capacity
    EXPECT_LE(max_seen, 2u);
    EXPECT_FALSE(q.push(std::make_unique<int>(0)));  // closed
    EXPECT_FALSE(q.pop().has_value());
    EXPECT_THROW(BoundedQueue<int>(0), std::invalid_argument);
}

TEST(BoundedQueue, CloseDrainsHeldItemsFirst) {
    BoundedQueue<int> q(3);
    ASSERT_TRUE(q.push(1));
    ASSERT_TRUE(q.push(2));
    q.close();
    EXPECT_EQ(q.pop().value(), 1);
    EXPECT_EQ(q.pop().value(), 2);
    EXPECT_FALSE(q.pop().has_value());
}

TEST(BoundedQueue, CloseWakesBlockedPop) {
    BoundedQueue<int> q(1);
    std::atomic<int> state{0};  // 0 waiting, 1 returned empty, 2 returned an item
    std::thread consumer([&] { state = q.pop().has_value() ? 2 : 1; });
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(state.load(), 0);  // blocked on the empty queue
    q.close();
    consumer.join();
    EXPECT_EQ(state.load(), 1);
}

TEST(BoundedQueue, CloseAndCancelWakeBlockedPush) {
    for (const bool cancel : {false, true}) {
        BoundedQueue<int> q(1);
        ASSERT_TRUE(q.push(7));
        std::atomic<int> state{0};  // 0 waiting, 1 push refused, 2 push accepted
        std::thread producer([&] { state = q.push(8) ? 2 : 1; });
        std::this_thread::sleep_for(50ms);
        EXPECT_EQ(state.load(), 0);  // blocked on the full queue
        if (cancel) {
            q.cancel();
        } else {
            q.close();
        }
        producer.join();
        EXPECT_EQ(state.load(), 1);
        EXPECT_EQ(q.size(), cancel ? 0u : 1u);  // cancel drops the held item, close keeps it for the consumer
        EXPECT_EQ(q.pop().has_value(), !cancel);
    }
}

TEST(BoundedQueue, CancelWakesBlockedPop) {
    BoundedQueue<int> q(2);
    std::atomic<int> state{0};
    std::thread consumer([&] { state = q.pop().has_value() ? 2 : 1; });
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(state.load(), 0);
    q.cancel();
    consumer.join();
    EXPECT_EQ(state.load(), 1);
}

TEST(BoundedQueue, ProducerExceptionReachesConsumerInOrder) {
    BoundedQueue<int> q(2);
    std::thread producer([&] {
        try {
            ASSERT_TRUE(q.push(1));
            ASSERT_TRUE(q.push(2));
            throw std::runtime_error("truncated input");
        } catch (...) {
            q.fail(std::current_exception());
        }
    });
    EXPECT_EQ(q.pop().value(), 1);
    EXPECT_EQ(q.pop().value(), 2);
    try {
        q.pop();
        ADD_FAILURE() << "pop did not rethrow";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "truncated input");
    }
    EXPECT_THROW(q.pop(), std::runtime_error);  // and again: the error stays
    producer.join();
    EXPECT_FALSE(q.push(3));
}
