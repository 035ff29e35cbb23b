// A producer thread and a consumer thread around work that stays on the calling thread, joined by two
// BoundedQueues: produce() -> in-queue -> caller -> out-queue -> consume(). Used by the transcode pipeline
// for decode -> engine -> encode. Header-only, no torch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "csrc/core/bounded_queue.h"

namespace flashvsr {

/// The producer and consumer threads with a queue of at most `depth` items on each side; depth 0 = no
/// threads (threaded() is false: the caller runs the stages in turn itself).
/// RAII: the destructor cancels both queues and joins both threads, so an exception or Ctrl-C on any thread
/// never leaves a thread running. A worker's error reaches the calling thread with its own type and
/// message: the producer's from pop_input() (after the items produced before it), the consumer's from the
/// next push_output() or from finish().
template <class In, class Out>
class StageThreads {
  public:
    /// Runs a worker's whole loop, e.g. inside a thread-local guard; the default just calls it.
    using Scope = std::function<void(const std::function<void()>&)>;

    explicit StageThreads(int64_t depth)
        : depth_(depth),
          in_(static_cast<size_t>(std::max<int64_t>(depth, 1))),
          out_(static_cast<size_t>(std::max<int64_t>(depth, 1))) {}
    StageThreads(const StageThreads&) = delete;
    StageThreads& operator=(const StageThreads&) = delete;
    ~StageThreads() {
        in_.cancel();
        out_.cancel();
        join();
    }

    bool threaded() const { return depth_ > 0; }

    /// produce(): the next In (the one for which is_last(In) is true ends the stream); consume(Out&):
    /// handles one Out. Each worker's loop runs inside scope().
    template <class Produce, class IsLast, class Consume>
    void start(Produce produce, IsLast is_last, Consume consume, Scope scope = nullptr) {
        if (!scope) {
            scope = [](const std::function<void()>& body) { body(); };
        }
        producer_ = std::thread([this, produce, is_last, scope]() mutable {
            try {
                scope([&] {
                    while (true) {
                        In x = produce();
                        const bool last = is_last(x);
                        if (!in_.push(std::move(x)) || last) {
                            break;
                        }
                    }
                });
                in_.close();
            } catch (...) {
                in_.fail(std::current_exception());
            }
        });
        consumer_ = std::thread([this, consume, scope]() mutable {
            try {
                scope([&] {
                    while (std::optional<Out> o = out_.pop()) {
                        consume(*o);
                    }
                });
            } catch (...) {
                consume_error_ = std::current_exception();
                out_.cancel();  // wakes the calling thread's push_output
            }
        });
    }

    /// The next produced item (blocks); rethrows the producer's error.
    In pop_input() {
        std::optional<In> x = in_.pop();
        if (!x) {
            throw std::logic_error("StageThreads: the input queue ended before its last item");
        }
        return std::move(*x);
    }

    /// Hands an item to the consumer (blocks while `depth` are queued); rethrows the consumer's error.
    void push_output(Out o) {
        if (out_.push(std::move(o))) {
            return;
        }
        rethrow_consume_error();
        throw std::logic_error("StageThreads: the output queue was closed");
    }

    /// The end (also after a cancel): stops the producer, lets the consumer handle everything queued, joins
    /// both and rethrows the consumer's error. Without threads: nothing.
    void finish() {
        in_.cancel();
        out_.close();
        join();
        rethrow_consume_error();
    }

    /// The most items the queues held at once (<= depth each).
    size_t max_queued_in() const { return in_.max_size(); }
    size_t max_queued_out() const { return out_.max_size(); }

  private:
    void join() {
        if (producer_.joinable()) {
            producer_.join();
        }
        if (consumer_.joinable()) {
            consumer_.join();
        }
    }
    void rethrow_consume_error() {
        if (!consume_error_) {
            return;
        }
        in_.cancel();
        out_.cancel();
        join();
        std::rethrow_exception(consume_error_);
    }

    int64_t depth_;
    BoundedQueue<In> in_;
    BoundedQueue<Out> out_;
    std::thread producer_, consumer_;
    std::exception_ptr consume_error_;  // written by the consumer thread before it ends; read after it ended
};

}  // namespace flashvsr
