// flashvsr._C.upscale_file / CancelToken / TranscodeProgress: the library's transcode pipeline from Python.
// Its keywords are the three option tables' (engine, upscale, and the job's: pipeline/transcode_options.h)
// plus engine, progress, cancel and verbose.
//
// The job runs on a worker thread with the GIL released; the calling thread waits in short steps and, with
// the GIL, delivers progress snapshots to the Python callback, watches the cancel object and runs Python's
// signal handlers (PyErr_CheckSignals), so Ctrl-C raises KeyboardInterrupt within one chunk. Every exit
// path cancels and joins the worker first.
#include <flashvsr/flashvsr.h>
#include <torch/python.h>

#include <ATen/Parallel.h>

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "csrc/io/av_ptr.h"
#include "csrc/pipeline/model_search.h"
#include "csrc/pipeline/transcode.h"
#include "csrc/pipeline/transcode_options.h"
#include "python/csrc/py_engine.h"
#include "python/csrc/py_options.h"

namespace py = pybind11;

namespace flashvsr::python {
namespace {

using pipeline::TranscodeJob;

std::string type_name(const py::handle& h) { return py::str(py::type::handle_of(h).attr("__name__")); }

[[noreturn]] void wrong_type(const char* name, const char* want, const py::handle& h) {
    throw py::type_error(std::string("upscale_file: option '") + name + "' must be " + want + ", got " +
                         type_name(h));
}

bool as_bool(const char* name, const py::handle& h) {
    if (!PyBool_Check(h.ptr())) {
        wrong_type(name, "a bool", h);
    }
    return h.cast<bool>();
}

/// A str or an os.PathLike.
std::string as_path(const char* name, const py::handle& h) {
    if (PyUnicode_Check(h.ptr()) || py::hasattr(h, "__fspath__")) {
        return py::str(py::module_::import("os").attr("fspath")(h));
    }
    wrong_type(name, "a str or os.PathLike", h);
}

/// Sets a keyword of the job's option table (pipeline/transcode_options.h) taken from Python; false for a
/// name it does not have.
bool set_job_option(TranscodeJob& job, const std::string& name, const py::handle& value) {
    const OptionSpec* s = pipeline::find_transcode_option_spec(name);
    if (s == nullptr || (s->faces & kPythonFace) == 0) {
        return false;
    }
    pipeline::set_option(job, name, option_value("upscale_file", *s, value));
    return true;
}

/// What the worker thread hands to the calling thread.
struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<pipeline::TranscodeProgress> fresh;  // the latest snapshot not delivered yet
    std::vector<std::string> messages;                 // "note: ..." / "warning: ..."
    bool done = false;
    std::exception_ptr error;
    pipeline::TranscodeReport report;
};

/// The worker thread; the destructor cancels and joins it (the GIL released), whatever happened.
class Worker {
  public:
    Worker(CancelToken& token, std::function<void()> body) : token_(token), thread_(std::move(body)) {}
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker() {
        if (thread_.joinable()) {
            token_.cancel();
            join();
        }
    }
    void join() {
        py::gil_scoped_release release;
        thread_.join();
    }

  private:
    CancelToken& token_;
    std::thread thread_;
};

py::dict upscale_file(const py::object& input, const py::object& output, const py::kwargs& kwargs) {
    TranscodeJob job;
    job.input = as_path("input", input);
    job.output = as_path("output", output);
    std::shared_ptr<Engine> engine;
    py::object progress = py::none();
    const CancelToken* user_cancel = nullptr;
    py::object user_cancel_ref;  // keeps the cancel object alive
    bool verbose = false;
    for (const auto& [key, value] : kwargs) {
        const std::string name = py::str(key);
        if (name == "engine") {
            if (!value.is_none()) {
                const PyEngine& e = value.cast<const PyEngine&>();
                e.get();  // InputError when closed
                engine = e.engine;
            }
            continue;
        }
        if (name == "progress") {
            if (!value.is_none() && !PyCallable_Check(value.ptr())) {
                wrong_type("progress", "callable", value);
            }
            progress = py::reinterpret_borrow<py::object>(value);
            continue;
        }
        if (name == "verbose") {
            verbose = as_bool("verbose", value);
            continue;
        }
        if (name == "cancel") {
            if (!value.is_none()) {
                user_cancel = &value.cast<const CancelToken&>();
                user_cancel_ref = py::reinterpret_borrow<py::object>(value);
            }
            continue;
        }
        if (!set_py_option("upscale_file", &job.engine, &job.upscale, name, value) &&
            !set_job_option(job, name, value)) {
            throw py::type_error("upscale_file() got an unexpected keyword argument '" + name +
                                 "' (see help(flashvsr.upscale_file))");
        }
    }
    if (!engine && job.engine.model_dir.empty()) {
        job.engine.model_dir = pipeline::find_model_dir(job.engine.version);
    }

    io::set_av_logging(verbose);  // FFmpeg's own log lines only when asked for, as the CLI's --verbose

    Shared shared;
    CancelToken token;
    pipeline::TranscodeHooks hooks;
    hooks.engine = engine;
    hooks.cancel = &token;
    hooks.on_progress = [&shared](const pipeline::TranscodeProgress& p) {
        {
            const std::lock_guard<std::mutex> lock(shared.mu);
            shared.fresh = p;
        }
        shared.cv.notify_all();
    };
    hooks.on_log = [&shared](pipeline::LogLevel level, const std::string& text) {
        const std::lock_guard<std::mutex> lock(shared.mu);
        shared.messages.push_back((level == pipeline::LogLevel::Note ? "note: " : "warning: ") + text);
    };
    const int threads = at::get_num_threads();
    Worker worker(token, [&] {
        at::set_num_threads(threads);  // the caller's intra-op thread count, as if the job ran on its thread
        try {
            pipeline::TranscodeReport r = pipeline::transcode(job, hooks);
            const std::lock_guard<std::mutex> lock(shared.mu);
            shared.report = std::move(r);
        } catch (...) {
            const std::lock_guard<std::mutex> lock(shared.mu);
            shared.error = std::current_exception();
        }
        {
            const std::lock_guard<std::mutex> lock(shared.mu);
            shared.done = true;
        }
        shared.cv.notify_all();
    });
    while (true) {
        std::optional<pipeline::TranscodeProgress> snapshot;
        bool done = false;
        {
            py::gil_scoped_release release;
            std::unique_lock<std::mutex> lock(shared.mu);
            shared.cv.wait_for(lock, std::chrono::milliseconds(50),
                               [&] { return shared.done || shared.fresh; });
            done = shared.done;
            snapshot = std::exchange(shared.fresh, std::nullopt);
        }
        if (snapshot && !progress.is_none() && !token.cancelled()) {
            const py::object r = progress(*snapshot);  // its exception ends the job (Worker's destructor)
            if (!r.is_none() && !r.cast<bool>()) {
                token.cancel();
            }
        }
        if (user_cancel != nullptr && user_cancel->cancelled()) {
            token.cancel();
        }
        if (PyErr_CheckSignals() != 0) {
            throw py::error_already_set();  // KeyboardInterrupt: Worker's destructor cancels and joins
        }
        if (done) {
            break;
        }
    }
    worker.join();
    if (shared.error) {
        std::rethrow_exception(shared.error);
    }
    const pipeline::TranscodeReport& r = shared.report;
    if (r.status == "cancelled") {
        throw Cancelled("upscale_file: cancelled after " + std::to_string(r.frames_out) + " frames; " +
                        (r.output.empty() ? std::string("nothing kept") : "kept in " + r.output));
    }
    py::dict d = py::module_::import("json").attr("loads")(pipeline::report_json(r, -1));
    d["messages"] = shared.messages;
    return d;
}

}  // namespace

void bind_pipeline(py::module_& m) {
    py::class_<CancelToken>(m, "CancelToken", "Cancels an upscale_file() job from any thread.")
        .def(py::init<>())
        .def("cancel", &CancelToken::cancel)
        .def_property_readonly("cancelled", &CancelToken::cancelled);

    py::class_<pipeline::TranscodeProgress>(m, "TranscodeProgress",
                                            "A snapshot of a running upscale_file() job.")
        .def_readonly("frames_done", &pipeline::TranscodeProgress::frames_done)
        .def_readonly("frames_total", &pipeline::TranscodeProgress::frames_total)
        .def_readonly("elapsed_s", &pipeline::TranscodeProgress::elapsed_s)
        .def_readonly("fps", &pipeline::TranscodeProgress::fps)
        .def_readonly("eta_s", &pipeline::TranscodeProgress::eta_s)
        .def_readonly("final", &pipeline::TranscodeProgress::final)
        .def("__repr__", [](const pipeline::TranscodeProgress& p) {
            return "TranscodeProgress(frames_done=" + std::to_string(p.frames_done) +
                   ", frames_total=" + std::to_string(p.frames_total) + ", fps=" + std::to_string(p.fps) +
                   ", eta_s=" + std::to_string(p.eta_s) + ", final=" + (p.final ? "True" : "False") + ")";
        });

    std::vector<std::string> names;
    for (const auto* table : {&engine_option_specs(), &upscale_option_specs()}) {
        for (const OptionSpec& s : *table) {
            names.push_back(s.name);
        }
    }
    for (const OptionSpec& s : pipeline::transcode_option_specs()) {
        if ((s.faces & kPythonFace) != 0) {
            names.push_back(s.name);
        }
    }
    m.attr("UPSCALE_FILE_OPTIONS") = names;
    m.def("upscale_file", &upscale_file, py::arg("input"), py::arg("output"));
}

}  // namespace flashvsr::python
