// The LQ window of one stream (see lq_window.h).
#include "csrc/engine/lq_window.h"

#include <ATen/ATen.h>
#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

#include "csrc/engine/engine_impl.h"

namespace flashvsr::engine {

LqWindow::LqWindow(const Engine::Impl& engine, int64_t scale, TransferBytes& transfers)
    : eng_(engine), scale_(scale), transfers_(transfers) {}

void LqWindow::start(const GridPadding& pad, bool keep_replay) {
    pad_ = pad;
    keep_replay_ = keep_replay;
}

void LqWindow::set_range(int64_t first, int64_t end) {
    TORCH_INTERNAL_ASSERT(pushed_ == raw_base_ && raw_.empty() && lq_.empty(), "set_range after a push");
    raw_base_ = ring_base_ = lq_base_ = pushed_ = first;
    end_ = end;
}

void LqWindow::push(const at::Tensor& frames) {
    for (int64_t i = 0; i < frames.size(0); ++i) {
        if (end_ < 0 || pushed_ + i < end_) {
            raw_.push_back(frames[i]);
        }
    }
    pushed_ += frames.size(0);
}

void LqWindow::finish(int64_t fed) { fed_ = fed; }

// Named range flashvsr::prep for profilers and bench_speed; free when nothing observes it.
at::Tensor LqWindow::prepare_one(const at::Tensor& frame) {
    RECORD_USER_SCOPE("flashvsr::prep");
    const at::Tensor x = prepare_lq(transfers_.to(frame.unsqueeze(0), eng_.device), scale_, pad_, eng_.dtype);
    const at::Device lq_device = eng_.keep_lq_on_host ? at::Device(at::kCPU) : eng_.device;
    return transfers_.to(x[0].select(1, 0), lq_device);  // [1,3,1,Hp,Wp] -> [3,Hp,Wp]
}

void LqWindow::ensure(int64_t end) {
    while (lq_base_ + static_cast<int64_t>(lq_.size()) < end) {
        const int64_t i = lq_base_ + static_cast<int64_t>(lq_.size());
        if (i < pushed_) {
            TORCH_INTERNAL_ASSERT(!raw_.empty() && raw_base_ == i, "stream: raw frame ", i, " missing");
            last_lq_ = prepare_one(raw_.front());
            if (keep_replay_) {
                TORCH_INTERNAL_ASSERT(ring_base_ + static_cast<int64_t>(ring_.size()) == i,
                                      "stream: replay gap");
                const at::Tensor& f = raw_.front();  // own storage on the host: never pins a pushed batch
                ring_.push_back(f.is_cpu() ? f.clone() : transfers_.to(f, at::Device(at::kCPU)));
            }
            raw_.pop_front();
            ++raw_base_;
            lq_.push_back(last_lq_);
        } else {
            TORCH_INTERNAL_ASSERT(fed_ >= 0 && i < fed_ && last_lq_.defined(), "stream: frame ", i,
                                  " unavailable");
            lq_.push_back(last_lq_);  // tail padding: copies of the last frame (shares storage)
        }
    }
}

at::Tensor LqWindow::prepared(int64_t i) {
    if (i >= lq_base_) {
        ensure(i + 1);
        return lq_[static_cast<size_t>(i - lq_base_)];
    }
    if (i >= pushed_) {
        return last_lq_;  // tail padding
    }
    TORCH_INTERNAL_ASSERT(i >= ring_base_ && i < ring_base_ + static_cast<int64_t>(ring_.size()),
                          "stream: LQ frame ", i, " already dropped");
    return prepare_one(ring_[static_cast<size_t>(i - ring_base_)]);
}

at::Tensor LqWindow::slice(int64_t b, int64_t e) {
    std::vector<at::Tensor> v;
    for (int64_t i = b; i < e; ++i) {
        v.push_back(prepared(i));
    }
    return at::stack(v, 1).unsqueeze(0);  // e-b x [3,Hp,Wp] -> [1,3,e-b,Hp,Wp]
}

void LqWindow::drop_before(int64_t index) {
    while (lq_base_ < index && !lq_.empty()) {
        lq_.pop_front();
        ++lq_base_;
    }
}

void LqWindow::trim_replay(int64_t first_frame) {
    if (!keep_replay_) {
        ring_.clear();
        return;
    }
    while (ring_base_ < first_frame && !ring_.empty()) {
        ring_.pop_front();
        ++ring_base_;
    }
}

int64_t LqWindow::bytes() const {
    int64_t b = 0;
    std::vector<const void*> seen;  // padding copies share one storage: count it once
    for (const auto& t : lq_) {
        const void* p = t.storage().data();
        if (std::find(seen.begin(), seen.end(), p) == seen.end()) {
            seen.push_back(p);
            b += static_cast<int64_t>(t.storage().nbytes());
        }
    }
    return b;
}

int64_t LqWindow::replay_bytes() const {
    int64_t b = 0;
    for (const auto& f : ring_) {
        b += static_cast<int64_t>(f.nbytes());
    }
    return b;
}

void LqWindow::clear() {
    lq_.clear();
    raw_.clear();
    ring_.clear();
}

}  // namespace flashvsr::engine
