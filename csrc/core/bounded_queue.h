// A bounded blocking FIFO between two threads (one producer, one consumer; more of each also work), with
// end-of-stream, error and cancel signals that wake whoever is blocked on it. Header-only, no torch.
//
//   producer: while (...) if (!q.push(item)) break;   // false: the consumer cancelled
//             q.close();                              // or q.fail(std::current_exception()) on an error
//   consumer: while (std::optional<T> v = q.pop()) use(*v);  // nullopt: closed and drained, or cancelled;
//                                                            // rethrows the producer's fail() in order
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

namespace flashvsr {

template <class T>
class BoundedQueue {
  public:
    /// capacity: the most items held at once (>= 1).
    explicit BoundedQueue(size_t capacity) : capacity_(capacity) {
        if (capacity < 1) {
            throw std::invalid_argument("BoundedQueue: capacity must be >= 1");
        }
    }
    BoundedQueue(const BoundedQueue&) = delete;
    BoundedQueue& operator=(const BoundedQueue&) = delete;

    /// Blocks while the queue is full. Returns false (and drops `v`) once the queue is closed, failed or
    /// cancelled: the producer should stop.
    bool push(T v) {
        std::unique_lock<std::mutex> lock(m_);
        not_full_.wait(lock, [&] { return items_.size() < capacity_ || closed_ || cancelled_; });
        if (closed_ || cancelled_) {
            return false;
        }
        items_.push_back(std::move(v));
        if (items_.size() > max_size_) {
            max_size_ = items_.size();
        }
        not_empty_.notify_one();
        return true;
    }

    /// Blocks while the queue is empty and open. Returns the oldest item; nullopt when it is closed and
    /// drained, or cancelled (items still held are dropped). After fail(e), the items pushed before come
    /// out first, then every pop rethrows e.
    std::optional<T> pop() {
        std::unique_lock<std::mutex> lock(m_);
        not_empty_.wait(lock, [&] { return !items_.empty() || closed_ || cancelled_; });
        if (cancelled_) {
            return std::nullopt;
        }
        if (items_.empty()) {
            if (error_) {
                std::rethrow_exception(error_);
            }
            return std::nullopt;
        }
        T v = std::move(items_.front());
        items_.pop_front();
        not_full_.notify_one();
        return v;
    }

    /// End of stream (producer side): pushes fail from now on, pop drains what is held, then returns nullopt.
    void close() {
        std::lock_guard<std::mutex> lock(m_);
        closed_ = true;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    /// close() with an error: once the items held are popped, pop rethrows `e`.
    void fail(std::exception_ptr e) {
        std::lock_guard<std::mutex> lock(m_);
        if (!error_) {
            error_ = std::move(e);
        }
        closed_ = true;
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    /// Stop at once (either side): blocked and later push/pop return false/nullopt; held items are dropped.
    void cancel() {
        std::lock_guard<std::mutex> lock(m_);
        cancelled_ = true;
        items_.clear();
        not_empty_.notify_all();
        not_full_.notify_all();
    }

    size_t capacity() const { return capacity_; }
    size_t size() const {
        std::lock_guard<std::mutex> lock(m_);
        return items_.size();
    }
    /// The most items ever held at once (<= capacity()).
    size_t max_size() const {
        std::lock_guard<std::mutex> lock(m_);
        return max_size_;
    }

  private:
    const size_t capacity_;
    mutable std::mutex m_;
    std::condition_variable not_empty_, not_full_;
    std::deque<T> items_;
    size_t max_size_ = 0;
    bool closed_ = false, cancelled_ = false;
    std::exception_ptr error_;
};

}  // namespace flashvsr
