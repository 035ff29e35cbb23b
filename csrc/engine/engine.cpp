// Engine: options, loading a model folder, whole-clip upscale on top of Stream.
#include <flashvsr/flashvsr.h>

#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <sstream>

#include "csrc/engine/color_fix.h"
#include "csrc/engine/engine_impl.h"
#include "csrc/engine/oom.h"
#include "csrc/engine/tiling/planner.h"
#include "models/checkpoint/load.h"
#include "models/checkpoint/torch_file.h"
#include "models/model_dir.h"

namespace flashvsr {
namespace engine {

at::Device resolve_device(const std::string& device) {
    if (device == "auto") {
        return at::globalContext().hasCUDA() ? at::Device(at::kCUDA, 0) : at::Device(at::kCPU);
    }
    if (device == "cpu") {
        return at::Device(at::kCPU);
    }
    if (device == "cuda" || device.rfind("cuda:", 0) == 0) {
        if (!at::globalContext().hasCUDA()) {
            throw InputError("device '" + device +
                             "' requested but no CUDA device is available (use --device cpu)");
        }
        try {
            at::Device d(device);
            if (d.has_index() && d.index() >= static_cast<int>(at::getNumGPUs())) {
                throw InputError("device '" + device + "': only " + std::to_string(at::getNumGPUs()) +
                                 " CUDA device(s)");
            }
            return d.has_index() ? d : at::Device(at::kCUDA, 0);
        } catch (const c10::Error&) {
            throw InputError("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
        }
    }
    throw InputError("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
}

at::ScalarType resolve_dtype(const std::string& dtype, const at::Device& device) {
    if (dtype == "auto" || dtype == "int8") {
        return device.is_cuda() ? at::kBFloat16 : at::kFloat;
    }
    if (dtype == "bf16" || dtype == "bfloat16") {
        return at::kBFloat16;
    }
    if (dtype == "fp16" || dtype == "float16") {
        return at::kHalf;
    }
    if (dtype == "fp32" || dtype == "float32") {
        return at::kFloat;
    }
    throw InputError("dtype must be auto, bf16, fp16, fp32 or int8, got '" + dtype + "'");
}

const char* dtype_name(at::ScalarType t) {
    switch (t) {
        case at::kBFloat16:
            return "bf16";
        case at::kHalf:
            return "fp16";
        case at::kFloat:
            return "fp32";
        case at::kDouble:
            return "fp64";
        default:
            return "?";
    }
}

}  // namespace engine

void EngineOptions::validate() const {
    if (model_dir.empty()) {
        throw InputError("model_dir is required");
    }
    if (!version.empty()) {
        models::parse_model_version(version);
    }
    models::required_files(mode);  // validates the mode
    engine::resolve_dtype(dtype, at::Device(at::kCPU));
    if (device != "auto" && device != "cpu" && device != "cuda" && device.rfind("cuda:", 0) != 0) {
        throw InputError("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
    }
    if (head_dim <= 0) {
        throw InputError("head_dim must be > 0, got " + std::to_string(head_dim));
    }
}

std::string EngineOptions::to_string() const {
    std::ostringstream os;
    os << "model_dir=" << model_dir << " version=" << (version.empty() ? "auto" : version) << " mode=" << mode
       << " device=" << device << " dtype=" << dtype << " legacy_v10_cache_order=" << legacy_v10_cache_order;
    return os.str();
}

void UpscaleOptions::validate() const {
    if (scale < 2 || scale > 4) {
        throw InputError("scale must be 2, 3 or 4, got " + std::to_string(scale));
    }
    engine::parse_color_fix(color_fix);
    if (!(sparse_ratio > 0)) {
        throw InputError("sparse_ratio must be > 0, got " + std::to_string(sparse_ratio));
    }
    if (!(kv_ratio >= 1)) {
        throw InputError("kv_ratio must be >= 1, got " + std::to_string(kv_ratio));
    }
    if (local_range < 1 || local_range % 2 == 0) {
        throw InputError("local_range must be a positive odd number, got " + std::to_string(local_range));
    }
    if (tile_size < 0) {
        throw InputError("tile_size must be >= 0 (0 = automatic), got " + std::to_string(tile_size));
    }
    if (tile_overlap < 0) {
        throw InputError("tile_overlap must be >= 0 (0 = automatic), got " + std::to_string(tile_overlap));
    }
    if (tile_size > 0 && 2 * tile_overlap > tile_size) {
        throw InputError("tile_overlap must be at most half of tile_size, got tile_overlap=" +
                         std::to_string(tile_overlap) + " with tile_size=" + std::to_string(tile_size));
    }
    if (max_memory < 0) {
        throw InputError("max_memory must be >= 0 bytes (0 = no limit), got " + std::to_string(max_memory));
    }
    engine::parse_parking(park_tile_state);
}

std::string UpscaleOptions::to_string() const {
    std::ostringstream os;
    os << "scale=" << scale << " color_fix=" << color_fix << " sparse_ratio=" << sparse_ratio
       << " kv_ratio=" << kv_ratio << " local_range=" << local_range << " seed=" << seed
       << " tile_size=" << tile_size << " tile_overlap=" << tile_overlap << " max_memory=" << max_memory
       << " park_tile_state=" << park_tile_state;
    return os.str();
}

Engine::Engine(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

Engine::Impl::~Impl() {
    dit.reset();
    lq_proj.reset();
    tc_decoder.reset();
    vae_decoder.reset();
    constants = {};
    engine::return_free_memory();
}

std::shared_ptr<Engine> Engine::load(const EngineOptions& o) {
    o.validate();
    auto impl = std::make_shared<Impl>();
    impl->device = engine::resolve_device(o.device);
    impl->dtype = engine::resolve_dtype(o.dtype, impl->device);
    std::optional<models::ModelVersion> version;
    if (!o.version.empty()) {
        version = models::parse_model_version(o.version);
    }
    const models::ModelDir md =
        models::resolve_model_dir(o.model_dir, version, models::required_files(o.mode));
    const models::LoadOptions lo{impl->dtype, impl->device};
    using F = models::ModelFiles;
    const bool int8 = o.dtype == "int8";
    {
        const std::string p = md.path(F::kDiT);
        // int8: read in bf16 (the published files' dtype: no loss, half the peak of float32), then quantize.
        const models::LoadOptions dit_lo{int8 ? at::kBFloat16 : impl->dtype, impl->device};
        impl->dit = std::make_unique<models::DiT>(models::load_tensors(p), p, dit_lo, o.head_dim);
        if (int8) {
            impl->dit->quantize_int8(impl->dtype);
        }
    }
    {
        const std::string p = md.path(F::kLQProj);
        impl->lq_proj = std::make_unique<models::LQProj>(models::load_tensors(p), p, lo);
    }
    if (o.mode == "full") {
        const std::string p = md.path(F::kVAE);
        impl->vae_decoder = std::make_unique<models::VAEDecoder>(models::load_tensors(p), p, lo);
    } else {
        const std::string p = md.path(F::kTCDecoder);
        impl->tc_decoder = std::make_unique<models::TCDecoder>(models::load_tensors(p), p, lo);
    }
    {
        const std::string p = md.path(F::kPrompt);
        const models::TorchFile prompt = models::read_torch_file(p);
        if (!prompt.tensor) {
            throw ModelError(p + ": expected a single tensor [1, L, text_dim], found a dict of tensors");
        }
        const at::Tensor& t = *prompt.tensor;
        if (t.dim() != 3 || t.size(0) != 1 || t.size(2) != impl->dit->config().text_dim) {
            std::ostringstream os;
            os << p << ": prompt tensor has shape " << t.sizes() << ", expected [1, L, "
               << impl->dit->config().text_dim << "] for this DiT";
            throw ModelError(os.str());
        }
        impl->constants = impl->dit->prepare(t.to(impl->device, impl->dtype));
    }
    if (impl->lq_proj->config().out_dim != impl->dit->config().dim) {
        throw ModelError(md.path(F::kLQProj) + ": LQ projector output width " +
                         std::to_string(impl->lq_proj->config().out_dim) + " does not match the DiT width " +
                         std::to_string(impl->dit->config().dim));
    }
    impl->keep_lq_on_host = o.mode == "tiny-long";
    impl->cache_order =
        o.legacy_v10_cache_order ? models::CacheOrder::AssignThenUse : models::CacheOrder::UseThenUpdate;
    EngineInfo& info = impl->info;
    info.model_dir = md.dir;
    info.version = models::to_string(md.version);
    info.version_source = md.version_source;
    info.mode = o.mode;
    info.device = impl->device.str();
    info.dtype = int8 ? "int8" : engine::dtype_name(impl->dtype);
    for (const auto& [name, path] : md.paths) {
        info.files.push_back(path);
    }
    info.warnings = md.warnings;
    if (o.legacy_v10_cache_order && md.version != models::ModelVersion::kV10) {
        info.warnings.push_back("legacy_v10_cache_order is meant for v1.0 weights, the folder is " +
                                info.version);
    }
    // Held weights: the checkpoints' parameters in the compute dtype (the DiT derives nothing; int8: its
    // quantized linears and scales) plus what the LQ projector and the TCDecoder derive at load, and the
    // prompt constants. The VAE decoder derives nothing.
    const auto elem = static_cast<int64_t>(c10::elementSize(impl->dtype));
    const int64_t decoder_params =
        impl->tc_decoder ? models::manifest_numel(models::TCDecoder::manifest(impl->tc_decoder->config()))
                         : models::manifest_numel(models::VAEDecoder::manifest(impl->vae_decoder->config()));
    const int64_t decoder_bytes = impl->tc_decoder ? impl->tc_decoder->weight_bytes() : decoder_params * elem;
    info.checkpoint_bytes =
        impl->dit->weight_bytes() +
        (models::manifest_numel(models::LQProj::manifest(impl->lq_proj->config())) + decoder_params) * elem;
    info.weight_bytes =
        impl->dit->weight_bytes() + impl->lq_proj->weight_bytes() + decoder_bytes + impl->constants.bytes();
    // The load's temporaries (int8: the bf16 DiT it quantized; dtype conversions) went back to glibc's heap,
    // which keeps the pages: hand them to the OS, so that a run's working set starts at the weights (int8,
    // full size: 0.7 GiB stayed resident for the whole run otherwise).
    engine::return_free_memory();
    return std::make_shared<Engine>(std::move(impl));
}

const EngineInfo& Engine::info() const { return impl_->info; }

namespace {

void move_networks(Engine::Impl& impl, at::Device device) {
    impl.dit->to(device);
    impl.lq_proj->to(device);
    if (impl.tc_decoder) {
        impl.tc_decoder->to(device);
    }
    if (impl.vae_decoder) {
        impl.vae_decoder->to(device);
    }
    models::DiTConstants& c = impl.constants;
    for (at::Tensor* t : {&c.t, &c.t_mod}) {
        *t = t->to(device);
    }
    for (auto* v : {&c.cross_k, &c.cross_v}) {
        for (at::Tensor& t : *v) {
            t = t.to(device);
        }
    }
    impl.device = device;
    impl.info.device = device.str();
}

}  // namespace

void Engine::to(const std::string& device) {
    const at::Device target = engine::resolve_device(device);
    const long users = impl_.use_count();
    if (users > 1) {
        throw InputError("Engine::to('" + device + "'): " + std::to_string(users - 1) +
                         " stream(s) made from this engine are still alive (their caches live on " +
                         impl_->device.str() + "); finish and destroy them before moving the weights");
    }
    // Sole owner (checked above) of an Impl that load() created non-const.
    Impl& impl = const_cast<Impl&>(*impl_);
    const at::Device from = impl.device;
    if (target == from) {
        return;
    }
    try {
        move_networks(impl, target);
    } catch (...) {
        const std::exception_ptr e = std::current_exception();
        try {
            move_networks(impl, from);  // all or nothing: the parts already moved go back
        } catch (...) {
            // leave the original error to the caller
        }
        if (!from.is_cpu() || !target.is_cpu()) {
            engine::empty_cuda_cache();
        }
        const engine::OomKind kind = engine::classify_out_of_memory(e);
        if (kind == engine::OomKind::kNone) {
            std::rethrow_exception(e);
        }
        std::string what;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            what = engine::first_line(x.what());
        }
        throw OutOfMemory("Engine::to('" + device + "'): out of memory moving " +
                          std::to_string(impl.info.weight_bytes) + " bytes of weights to " + target.str() +
                          " [" + engine::to_string(kind) + ": " + what + "]; the weights stay on " +
                          from.str());
    }
    if (!from.is_cpu()) {
        engine::empty_cuda_cache();  // hand the device memory back to the driver
    }
}

Stream Engine::stream(const UpscaleOptions& options) const { return Stream(impl_, options); }
Stream Engine::stream(const UpscaleOptions& options, const SegmentOptions& segment) const {
    return Stream(impl_, options, segment);
}

at::Tensor Engine::upscale(const at::Tensor& frames, const UpscaleOptions& options,
                           const ProgressFn& progress, const CancelToken* cancel) const {
    TORCH_CHECK(frames.dim() == 4 && frames.size(3) == 3, "upscale: frames must be [F,H,W,3], got ",
                frames.sizes());
    if (frames.size(0) < 1) {
        throw InputError("upscale: no frames given");
    }
    Stream s = stream(options);
    const int64_t total = frames.size(0);
    if (progress) {
        s.set_progress([&](int64_t done, int64_t) { return progress(done, total); });
    }
    s.set_cancel(cancel);
    std::vector<at::Tensor> out;
    s.push(frames);
    out.push_back(s.pull());
    s.finish();
    out.push_back(s.pull());
    return at::cat(out, 0);
}

}  // namespace flashvsr
