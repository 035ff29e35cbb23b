// Checkpoint file I/O: safetensors and torch.save zip files, C++ round trips, hand-crafted corrupt
// files, and cross-checks with the pinned Python (FLASHVSR_TEST_PYTHON, set by CTest).
#include <flashvsr/flashvsr.h>
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>

#include "csrc/core/md5.h"
#include "error_test_util.h"
#include "models/checkpoint/load.h"
#include "models/checkpoint/safetensors.h"
#include "models/checkpoint/torch_file.h"

using namespace flashvsr::models;
using flashvsr::testing::model_error_of;
namespace fs = std::filesystem;

namespace {

// ---- helpers ---------------------------------------------------------------------------------------

struct TmpDir {
    fs::path path;
    TmpDir() : path(fs::temp_directory_path() / ("flashvsr_ckpt_test_" + std::to_string(::getpid()))) {
        fs::create_directories(path);
    }
    ~TmpDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

std::string tmp(const std::string& name) {
    static TmpDir dir;
    return (dir.path / name).string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string le64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }
std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

/// A safetensors file from a header text and a data buffer.
std::string st_bytes(const std::string& header, const std::string& data) {
    return le64(header.size()) + header + data;
}

#define EXPECT_CONTAINS(text, part)                            \
    EXPECT_NE(std::string(text).find(part), std::string::npos) \
        << "message: " << (text) << "\nexpected: " << (part)

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
    if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) {
        return false;
    }
    const at::Tensor ca = a.contiguous(), cb = b.contiguous();
    return ca.nbytes() == cb.nbytes() &&
           (ca.nbytes() == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.nbytes()) == 0);
}

/// Random bits of `dtype` (bool: 0/1) in `shape`.
at::Tensor random_bits(at::ScalarType dtype, at::IntArrayRef shape) {
    int64_t numel = 1;
    for (int64_t s : shape) {
        numel *= s;
    }
    if (dtype == at::kBool) {
        return at::randint(0, 2, shape, at::kByte).to(at::kBool);
    }
    const int64_t item = static_cast<int64_t>(c10::elementSize(dtype));
    return at::randint(0, 256, {numel * item}, at::kByte).view(dtype).reshape(shape);
}

const std::vector<at::ScalarType>& all_dtypes() {
    static const std::vector<at::ScalarType> v{at::kFloat, at::kHalf, at::kBFloat16,      at::kDouble,
                                               at::kLong,  at::kInt,  at::kShort,         at::kChar,
                                               at::kByte,  at::kBool, at::kFloat8_e4m3fn, at::kFloat8_e5m2};
    return v;
}

/// The pathname of the mapping in /proc/self/maps that contains `p` ("" if none).
std::string mapping_of(const void* p) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const auto addr = reinterpret_cast<uintptr_t>(p);
    while (std::getline(maps, line)) {
        uintptr_t lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
            const auto slash = line.find('/');
            return slash == std::string::npos ? "" : line.substr(slash);
        }
    }
    return "";
}

bool in_mapping_of(const at::Tensor& t, const std::string& path) {
    return mapping_of(t.data_ptr()) == fs::canonical(path).string();
}

// ---- pickles and zips by hand ----------------------------------------------------------------------

std::string pk_str(const std::string& s) { return "X" + le32(static_cast<uint32_t>(s.size())) + s; }
std::string pk_int1(int v) { return std::string("K") + static_cast<char>(v); }

/// _rebuild_tensor_v2 of a 1-d view (size, stride 1, offset) of FloatStorage '0' with `numel` elements.
std::string pk_tensor(int numel, int size, int offset, const std::string& storage = "FloatStorage") {
    return "ctorch._utils\n_rebuild_tensor_v2\n((" + pk_str("storage") + "ctorch\n" + storage + "\n" +
           pk_str("0") + pk_str("cpu") + pk_int1(numel) + "tQ" + pk_int1(offset) + pk_int1(size) + "\x85" +
           pk_int1(1) + "\x85\x89" + "ccollections\nOrderedDict\n)Rt" + "R";
}

/// A torch.save-like zip with the given data.pkl and data/0 (written with LibTorch's zip writer).
void write_zip(const std::string& path, const std::string& pickle,
               const std::string& record0 = std::string(16, '\0')) {
    caffe2::serialize::PyTorchStreamWriter w(path);
    w.writeRecord("data.pkl", pickle.data(), pickle.size());
    w.writeRecord("data/0", record0.data(), record0.size());
    w.writeEndOfFile();
}

// ---- Python ----------------------------------------------------------------------------------------

/// Runs `script` with FLASHVSR_TEST_PYTHON and `args`; false with the reason in `*log` when the
/// variable is unset or the script fails.
bool run_python(const std::string& name, const std::string& script, const std::string& args,
                std::string* log) {
    const char* py = std::getenv("FLASHVSR_TEST_PYTHON");
    if (py == nullptr || *py == '\0') {
        *log =
            "FLASHVSR_TEST_PYTHON is not set: this test needs the Python with torch and safetensors (CTest "
            "sets it to the configured Python_EXECUTABLE; when running the binary by hand use "
            "FLASHVSR_TEST_PYTHON=/path/to/python)";
        return false;
    }
    const std::string file = tmp(name + ".py"), out = tmp(name + ".log");
    write_bytes(file, script);
    const std::string cmd =
        std::string("\"") + py + "\" \"" + file + "\" " + args + " > \"" + out + "\" 2>&1";
    const int rc = std::system(cmd.c_str());
    *log = read_bytes(out);
    if (rc != 0) {
        *log = name + " failed (status " + std::to_string(rc) + "):\n" + *log;
        return false;
    }
    return true;
}

const char* kFixtureScript = R"PY(
import collections, sys, zipfile, torch
from safetensors.torch import save_file
d = sys.argv[1]
torch.manual_seed(0)
base = torch.randn(24)
plain = {
    "f32": torch.randn(3, 4), "f16": torch.randn(5).half(), "bf16": torch.randn(2, 3, 4).bfloat16(),
    "f64": torch.randn(2, 2, dtype=torch.float64), "i64": torch.randint(-10**12, 10**12, (7,)),
    "i32": torch.randint(-10**6, 10**6, (3,), dtype=torch.int32), "i16": torch.randint(-300, 300, (3,), dtype=torch.int16),
    "i8": torch.randint(-100, 100, (5,), dtype=torch.int8), "u8": torch.randint(0, 255, (4,), dtype=torch.uint8),
    "bool": torch.rand(6) > 0.5, "f8": torch.randn(4).to(torch.float8_e4m3fn), "f8b": torch.randn(4).to(torch.float8_e5m2),
    "scalar": torch.tensor(3.25), "empty": torch.zeros(0, 3),
    "view_a": base[2:10], "view_b": base.as_strided((2, 3), (1, 4), 5),
}
torch.save(plain, f"{d}/dict.pth")
m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2))
sd = m.state_dict()
assert type(sd) is collections.OrderedDict
torch.save(sd, f"{d}/state_dict.pth")
prompt = torch.randn(1, 8, 16).bfloat16()
torch.save(prompt, f"{d}/bare.pth")
torch.save({"x": torch.ones(3)}, f"{d}/legacy.pth", _use_new_zipfile_serialization=False)
exp = {k: v.contiguous().clone() for k, v in plain.items()}
exp.update({"sd." + k: v.contiguous().clone() for k, v in sd.items()})
exp["bare"] = prompt
save_file(exp, f"{d}/expected.safetensors")
save_file({k: v.contiguous() for k, v in plain.items()}, f"{d}/plain.safetensors", metadata={"format": "pt"})
# Storages that say 'cuda:0', records at unaligned offsets (plain zipfile, no 64-byte padding).
src = zipfile.ZipFile(f"{d}/dict.pth")
with zipfile.ZipFile(f"{d}/cuda_unaligned.pth", "w", zipfile.ZIP_STORED) as z:
    for info in src.infolist():
        data = src.read(info.filename)
        if info.filename.endswith("data.pkl"):
            assert b"X\x03\x00\x00\x00cpu" in data
            data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
        z.writestr(info.filename, data)
back = torch.load(f"{d}/cuda_unaligned.pth", map_location="cpu", weights_only=True)
assert all(torch.equal(back[k].view(torch.uint8) if k.startswith("f8") else back[k],
                       plain[k].view(torch.uint8) if k.startswith("f8") else plain[k]) for k in plain)
print("fixtures written")
)PY";

const char* kCheckScript = R"PY(
import hashlib, sys, torch
from safetensors import safe_open
from safetensors.torch import save_file
d = sys.argv[1]
lines = []
def summary(name, tensors):
    first = {}
    for k, t in sorted(tensors.items()):
        raw = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        share = "-"
        if t.untyped_storage().nbytes() > 0:
            share = first.setdefault(t.untyped_storage().data_ptr(), k)
        lines.append(f"{name} {k} {t.dtype} {list(t.shape)} {list(t.stride())} {t.storage_offset()} "
                     f"{hashlib.md5(raw).hexdigest()} {share}")
for name in ["ours_od.pth", "ours_dict.pth"]:
    obj = torch.load(f"{d}/{name}", weights_only=True)
    lines.append(f"{name} type {type(obj).__name__}")
    summary(name, obj)
t = torch.load(f"{d}/ours_t.pth", weights_only=True)
lines.append(f"ours_t.pth type {type(t).__name__}")
summary("ours_t.pth", {"tensor": t})
with safe_open(f"{d}/ours.safetensors", "pt") as f:
    st = {k: f.get_tensor(k) for k in f.keys()}
    meta = f.metadata()
lines.append(f"ours.safetensors metadata {sorted(meta.items())}")
summary("ours.safetensors", st)
save_file(st, f"{d}/ref.safetensors", metadata=meta)
same = open(f"{d}/ref.safetensors", "rb").read() == open(f"{d}/ours.safetensors", "rb").read()
lines.append(f"ours.safetensors byte-identical to safetensors.torch.save_file: {same}")
open(f"{d}/summary.txt", "w").write("\n".join(lines) + "\n")
)PY";

std::string dtype_name(at::ScalarType t) {
    switch (t) {
        case at::kFloat:
            return "torch.float32";
        case at::kHalf:
            return "torch.float16";
        case at::kBFloat16:
            return "torch.bfloat16";
        case at::kDouble:
            return "torch.float64";
        case at::kLong:
            return "torch.int64";
        case at::kInt:
            return "torch.int32";
        case at::kShort:
            return "torch.int16";
        case at::kChar:
            return "torch.int8";
        case at::kByte:
            return "torch.uint8";
        case at::kBool:
            return "torch.bool";
        case at::kFloat8_e4m3fn:
            return "torch.float8_e4m3fn";
        case at::kFloat8_e5m2:
            return "torch.float8_e5m2";
        default:
            return "?";
    }
}

std::string list_str(at::IntArrayRef v) {
    std::ostringstream os;
    os << "[";
    for (size_t i = 0; i < v.size(); ++i) {
        os << (i ? ", " : "") << v[i];
    }
    os << "]";
    return os.str();
}

/// The same lines kCheckScript prints, computed in C++ (`contiguous`: strides/offset as a fresh copy).
std::string summary(const std::string& name, const TensorMap& tensors, bool contiguous) {
    std::ostringstream os;
    std::map<const void*, std::string> first;
    for (const auto& [k, t] : tensors) {
        const at::Tensor c = t.contiguous();
        flashvsr::Md5 md5;
        md5.update(c.data_ptr(), c.nbytes());
        std::string share = "-";
        if (t.storage().nbytes() > 0) {
            share = first.emplace(contiguous ? c.data_ptr() : t.storage().data(), k).first->second;
        }
        os << name << " " << k << " " << dtype_name(t.scalar_type()) << " " << list_str(t.sizes()) << " "
           << list_str(contiguous ? c.strides() : t.strides()) << " " << (contiguous ? 0 : t.storage_offset())
           << " " << md5.hex_digest() << " " << share << "\n";
    }
    return os.str();
}

/// Tensors of every dtype plus the awkward cases: 0-dim, empty, two views sharing one storage.
TensorMap mixed_tensors() {
    at::manual_seed(7);
    TensorMap m;
    int i = 0;
    for (at::ScalarType t : all_dtypes()) {
        m["t" + std::to_string(i++) + "." + dtype_name(t).substr(6)] = random_bits(t, {2, 3});
    }
    m["scalar"] = at::tensor(2.5, at::kDouble).reshape({});
    m["empty"] = at::zeros({0, 4}, at::kBFloat16);
    const at::Tensor base = at::randn({24});
    m["view_a"] = base.slice(0, 2, 10);
    m["view_b"] = base.as_strided({2, 3}, {1, 4}, 5);
    return m;
}

}  // namespace

// ---- safetensors ------------------------------------------------------------------------------------

TEST(Safetensors, RoundTripAllDtypes) {
    const TensorMap in = mixed_tensors();
    const std::string path = tmp("rt.safetensors");
    write_safetensors(path, in, {{"format", "pt"}, {"note", "a \"quoted\" value"}});
    const SafetensorsFile f = read_safetensors(path);
    ASSERT_EQ(f.tensors.size(), in.size());
    for (const auto& [k, t] : in) {
        ASSERT_TRUE(f.tensors.count(k)) << k;
        EXPECT_TRUE(same_bits(f.tensors.at(k), t)) << k;
        EXPECT_TRUE(f.tensors.at(k).is_contiguous()) << k;
    }
    EXPECT_EQ(f.tensors.at("scalar").dim(), 0);
    EXPECT_EQ(f.tensors.at("scalar").item<double>(), 2.5);
    EXPECT_EQ(f.metadata,
              (std::map<std::string, std::string>{{"format", "pt"}, {"note", "a \"quoted\" value"}}));
    // Reference layout: header length a multiple of 8, dtypes by descending size (I64 first, BOOL last).
    const std::string bytes = read_bytes(path);
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    EXPECT_EQ(n % 8, 0u);
    const std::string header = bytes.substr(8, n);
    EXPECT_EQ(header.find("{\"__metadata__\":{"), 0u);
    EXPECT_LT(header.find("\"I64\""), header.find("\"F64\""));
    EXPECT_LT(header.find("\"F64\""), header.find("\"F32\""));
    EXPECT_LT(header.find("\"BF16\""), header.find("\"F16\""));
    EXPECT_LT(header.find("\"U8\""), header.find("\"BOOL\""));
    size_t data_bytes = 0;  // views are written as their own contiguous bytes, not their storage
    for (const auto& [k, t] : in) {
        data_bytes += t.numel() * t.element_size();
    }
    EXPECT_EQ(bytes.size(), 8 + n + data_bytes);
}

TEST(Safetensors, ZeroCopyViewsKeepTheMappingAlive) {
    const std::string path = tmp("zc.safetensors");
    write_safetensors(path, {{"a", at::arange(10, at::kFloat)}, {"b", at::arange(3, at::kLong)}});
    at::Tensor a;
    const void* b_ptr = nullptr;
    {
        SafetensorsFile f = read_safetensors(path);
        EXPECT_TRUE(in_mapping_of(f.tensors.at("a"), path));
        EXPECT_TRUE(in_mapping_of(f.tensors.at("b"), path));
        a = f.tensors.at("a");
        b_ptr = f.tensors.at("b").data_ptr();
    }
    // The file object is gone; `a` still reads the mapped bytes.
    EXPECT_TRUE(in_mapping_of(a, path));
    EXPECT_TRUE(at::equal(a, at::arange(10, at::kFloat)));
    a.reset();
    EXPECT_NE(mapping_of(b_ptr), fs::canonical(path).string());  // unmapped with the last view
}

TEST(Safetensors, MisalignedTensorIsCopied) {
    // A header length N with N % 8 == 1: the F32 data starts at file offset 8 + N, not a multiple of 4.
    const std::string header = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    const std::string padded_header = header + std::string((9 - header.size() % 8) % 8, ' ');  // N % 8 == 1
    std::string data(8, '\0');
    const float v[2] = {1.5f, -2.0f};
    std::memcpy(data.data(), v, 8);
    const std::string path = tmp("mis.safetensors");
    ASSERT_NE((8 + padded_header.size()) % 4, 0u) << padded_header.size();
    write_bytes(path, st_bytes(padded_header, data));
    // The mapping is page-aligned, so file offset 8 + N is misaligned when N % 4 != 0.
    const SafetensorsFile f = read_safetensors(path);
    const at::Tensor x = f.tensors.at("x");
    EXPECT_FALSE(in_mapping_of(x, path));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(x.data_ptr()) % 4, 0u);
    EXPECT_EQ(x[0].item<float>(), 1.5f);
    EXPECT_EQ(x[1].item<float>(), -2.0f);
}

TEST(Safetensors, CorruptFilesThrowModelError) {
    const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
    const std::string data8(8, '\0');
    struct Case {
        const char* name;
        std::string bytes;
        std::vector<std::string> parts;  // the message contains each
    };
    const std::vector<Case> cases{
        {"short", "abc", {"shorter than the 8-byte header length"}},
        {"empty", "", {"shorter than the 8-byte header length"}},
        {"header_past_eof", le64(1000) + "{}", {"header length 1000 runs past the end"}},
        {"header_absurd", le64(uint64_t{1} << 62) + "{}", {"exceeds the limit"}},
        {"not_json", st_bytes("{not json}", ""), {"not valid JSON"}},
        {"not_brace", st_bytes("[1,2,3] ", ""), {"does not start with '{'"}},
        {"no_dtype", st_bytes(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", data8), {"'a'", "no 'dtype'"}},
        {"entry_not_object", st_bytes(R"({"a":5})", ""), {"'a'", "must be a JSON object"}},
        {"offsets_past_eof",
         st_bytes(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", data8),
         {"'a'", "[0, 16] outside the data buffer of 8 bytes"}},
        {"offsets_reversed",
         st_bytes(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", data8),
         {"'a'", "outside the data buffer"}},
        {"span_mismatch",
         st_bytes(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", data8),
         {"'a'", "span 8 bytes", "needs 12"}},
        {"overlap",
         st_bytes("{" + ok_entry + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", data8),
         {"'a'", "'b'", "overlap"}},
        {"shape_overflow",
         st_bytes(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", data8),
         {"'a'", "overflows 64 bits"}},
        {"shape_bytes_overflow",
         st_bytes(R"({"a":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", data8),
         {"'a'", "overflows 64 bits"}},
        {"shape_negative",
         st_bytes(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", data8),
         {"'a'", "shape entry must be a non-negative integer, got -2"}},
        {"shape_float",
         st_bytes(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", data8),
         {"'a'", "non-negative integer"}},
        {"unknown_dtype",
         st_bytes(R"({"a":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}})", data8),
         {"'a'", "unknown dtype 'X9'"}},
        {"unsupported_u16",
         st_bytes(R"({"a":{"dtype":"U16","shape":[4],"data_offsets":[0,8]}})", data8),
         {"'a'", "dtype 'U16' is not supported"}},
        {"unsupported_c64",
         st_bytes(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", data8),
         {"'a'", "dtype 'C64' is not supported"}},
        {"duplicate_key", st_bytes("{" + ok_entry + "," + ok_entry + "}", data8), {"key 'a' twice"}},
        {"metadata_not_string", st_bytes(R"({"__metadata__":{"k":1}})", ""), {"__metadata__ value of 'k'"}},
    };
    for (const auto& c : cases) {
        const std::string path = tmp(std::string("bad_") + c.name + ".safetensors");
        write_bytes(path, c.bytes);
        const std::string msg = model_error_of([&] { read_safetensors(path); });
        EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << c.name << ": " << msg;
        for (const auto& p : c.parts) {
            EXPECT_CONTAINS(msg, p) << " (case " << c.name << ")";
        }
    }
    // A valid file cut short: the last tensor's span runs past the end.
    const std::string good = tmp("good.safetensors");
    write_safetensors(good, {{"a", at::ones({64})}, {"b", at::ones({64}, at::kHalf)}});
    const std::string bytes = read_bytes(good);
    const std::string cut = tmp("cut.safetensors");
    write_bytes(cut, bytes.substr(0, bytes.size() - 10));
    EXPECT_CONTAINS(model_error_of([&] { read_safetensors(cut); }),
                    "'b': data_offsets [256, 384] outside the data buffer");
    EXPECT_CONTAINS(model_error_of([&] { read_safetensors(tmp("does_not_exist.safetensors")); }),
                    "cannot open");
}

TEST(Safetensors, WriterRejectsUnsupportedDtypeAndKeepsOldFile) {
    const std::string path = tmp("keep.safetensors");
    write_safetensors(path, {{"a", at::ones({2})}});
    const std::string before = read_bytes(path);
    const auto write_complex = [&] { write_safetensors(path, {{"z", at::ones({2}, at::kComplexFloat)}}); };
    EXPECT_CONTAINS(model_error_of(write_complex), "tensor 'z' has dtype ComplexFloat");
    const auto write_bad_key = [&] { write_safetensors(path, {{"bad\xff", at::ones({1})}}); };
    EXPECT_CONTAINS(model_error_of(write_bad_key), "cannot write the safetensors header");
    EXPECT_EQ(read_bytes(path), before);
    for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) {
        EXPECT_EQ(e.path().filename().string().find(".keep.safetensors.tmp"), std::string::npos) << e.path();
    }
}

// ---- torch.save files ------------------------------------------------------------------------------

TEST(TorchFile, RoundTripAllDtypesAndSharedViews) {
    const TensorMap in = mixed_tensors();
    for (bool ordered : {true, false}) {
        const std::string path = tmp(ordered ? "rt_od.pth" : "rt_dict.pth");
        write_torch_file(path, in, ordered);
        const TorchFile f = read_torch_file(path);
        EXPECT_FALSE(f.tensor.has_value());
        ASSERT_EQ(f.tensors.size(), in.size());
        for (const auto& [k, t] : in) {
            const at::Tensor& r = f.tensors.at(k);
            EXPECT_TRUE(same_bits(r, t)) << k;
            EXPECT_EQ(r.strides(), t.strides()) << k;
            EXPECT_EQ(r.storage_offset(), t.storage_offset()) << k;
        }
        const at::Tensor& a = f.tensors.at("view_a");
        const at::Tensor& b = f.tensors.at("view_b");
        EXPECT_EQ(a.storage().data(), b.storage().data());  // one storage record, two views
        EXPECT_EQ(a.storage().nbytes(), 24u * 4);
        EXPECT_EQ(b.strides(), (std::vector<int64_t>{1, 4}));
        EXPECT_EQ(b.storage_offset(), 5);
        EXPECT_TRUE(in_mapping_of(f.tensors.at("t0.float32"), path));  // zero-copy from the zip
    }
}

TEST(TorchFile, BareTensorRoundTrip) {
    at::manual_seed(3);
    const at::Tensor t = at::randn({1, 8, 16}).to(at::kBFloat16);
    const std::string path = tmp("bare_ours.pth");
    write_torch_tensor(path, t);
    const TorchFile f = read_torch_file(path);
    ASSERT_TRUE(f.tensor.has_value());
    EXPECT_TRUE(f.tensors.empty());
    EXPECT_TRUE(same_bits(*f.tensor, t));
    const TensorMap m = load_tensors(path);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_TRUE(same_bits(m.at(""), t));
}

TEST(TorchFile, ForbiddenGlobalsAreNeverCalled) {
    const std::string marker = tmp("pwned");
    const std::string path = tmp("evil.pth");
    // os.system("touch <marker>") through GLOBAL + REDUCE.
    write_zip(path, std::string("\x80\x02") + "cos\nsystem\n" + pk_str("touch " + marker) + "\x85R.");
    EXPECT_EQ(
        model_error_of([&] { read_torch_file(path); }),
        path + ": pickle references forbidden global 'os.system' (no code from a checkpoint is executed)");
    // builtins.eval through STACK_GLOBAL, inside an otherwise valid dict.
    write_zip(path, std::string("\x80\x02}") + pk_str("a") + pk_str("builtins") + pk_str("eval") + "\x93" +
                        pk_str("1") + "\x85Rs.");
    EXPECT_EQ(
        model_error_of([&] { load_tensors(path); }),
        path +
            ": pickle references forbidden global 'builtins.eval' (no code from a checkpoint is executed)");
    // A torch global outside the allow-list.
    write_zip(path, std::string("\x80\x02") + "ctorch\nload\n" + pk_str("x") + "\x85R.");
    EXPECT_CONTAINS(model_error_of([&] { read_torch_file(path); }), "forbidden global 'torch.load'");
    EXPECT_FALSE(fs::exists(marker));
}

TEST(TorchFile, CorruptFilesThrowModelError) {
    struct Case {
        const char* name;
        std::string pickle;
        std::string part;
    };
    const std::string p2 = "\x80\x02";
    const std::vector<Case> cases{
        {"valid_control", p2 + "}" + pk_str("a") + pk_tensor(4, 4, 0) + "s.", "<no error>"},
        {"view_past_storage", p2 + "}" + pk_str("a") + pk_tensor(4, 4, 1) + "s.",
         "tensor view (size [4], stride [1], offset 1) reaches past its storage of 16 bytes"},
        {"record_too_short", p2 + "}" + pk_str("a") + pk_tensor(8, 4, 0) + "s.",
         "storage record 'data/0' has 16 bytes, the pickle expects 32"},
        {"not_tensor", p2 + "}" + pk_str("a") + pk_int1(1) + "s.",
         "entry 'a' is a int, not a tensor (only flat state dicts of tensors are supported)"},
        {"nested_dict", p2 + "}" + pk_str("a") + "}s.", "entry 'a' is a dict, not a tensor"},
        {"top_level_list", p2 + "].", "the file holds a list, expected a tensor or a dict of tensors"},
        {"truncated_pickle", p2 + "}" + pk_str("a"), "truncated pickle"},
        {"string_past_end", p2 + "X\xff\xff\xff\x7f" + "abc", "truncated pickle"},
        {"stack_underflow", p2 + "s.", "pickle stack underflow"},
        {"bad_memo", p2 + "h\x07.", "memo index 7 was never stored"},
        {"unknown_opcode", p2 + "\xfe.", "unsupported pickle opcode 0xfe"},
        {"bad_pid", p2 + pk_str("x") + "Q.", "persistent id is not ('storage', type, key, location, numel)"},
        {"reduce_non_global", p2 + pk_str("x") + ")R.", "REDUCE calls a str"},
        {"storage_not_callable", p2 + "ctorch\nFloatStorage\n)R.", "'torch.FloatStorage' cannot be called"},
        {"missing_record",
         p2 + "}" + pk_str("a") + "ctorch._utils\n_rebuild_tensor_v2\n((" + pk_str("storage") +
             "ctorch\nFloatStorage\n" + pk_str("9") + pk_str("cpu") + pk_int1(1) + "tQ" + pk_int1(0) +
             pk_int1(1) + "\x85" + pk_int1(1) + "\x85\x89" + "}tRs.",
         "storage record 'data/9' named by the pickle is missing"},
    };
    for (const auto& c : cases) {
        const std::string path = tmp(std::string("bad_") + c.name + ".pth");
        write_zip(path, c.pickle);
        const std::string msg = model_error_of([&] { read_torch_file(path); });
        EXPECT_CONTAINS(msg, c.part) << " (case " << c.name << ")";
        if (std::string(c.name) != "valid_control") {
            EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
        }
    }
    // Container-level damage.
    const std::string good = tmp("good.pth");
    write_torch_file(good, {{"a", at::ones({1000})}});
    const std::string bytes = read_bytes(good);
    const std::string cut = tmp("cut.pth");
    write_bytes(cut, bytes.substr(0, bytes.size() / 2));
    EXPECT_CONTAINS(model_error_of([&] { read_torch_file(cut); }),
                    cut + ": not a valid torch.save zip archive");
    const std::string junk = tmp("junk.pth");
    write_bytes(junk, "this is not a checkpoint at all");
    EXPECT_EQ(model_error_of([&] { read_torch_file(junk); }),
              junk + ": not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle; 31 bytes)");
    const std::string raw = tmp("raw.pkl");
    write_bytes(raw, "\x80\x02}.");
    EXPECT_CONTAINS(model_error_of([&] { read_torch_file(raw); }),
                    "a raw pickle, not a torch.save zip archive");
    const std::string nopkl = tmp("nopkl.pth");
    {
        caffe2::serialize::PyTorchStreamWriter w(nopkl);
        w.writeRecord("other", "x", 1);
        w.writeEndOfFile();
    }
    EXPECT_CONTAINS(model_error_of([&] { read_torch_file(nopkl); }), "zip archive without data.pkl");
}

TEST(TorchFile, WriterRejectsMixedDtypeSharing) {
    const at::Tensor base = at::zeros({8});
    const TensorMap m{{"f", base}, {"i", base.view(at::kInt)}};
    EXPECT_CONTAINS(model_error_of([&] { write_torch_file(tmp("mixed.pth"), m); }),
                    "tensor 'i' views a storage that another tensor views as Float");
}

TEST(LoadTensors, ChoosesTheReaderByContent) {
    const TensorMap in{{"w", at::arange(6, at::kFloat).reshape({2, 3})}};
    const std::string st = tmp("named_like_a.pth");  // the extension is ignored
    write_safetensors(st, in);
    EXPECT_TRUE(same_bits(load_tensors(st).at("w"), in.at("w")));
    const std::string pt = tmp("named_like_a.safetensors");
    write_torch_file(pt, in);
    EXPECT_TRUE(same_bits(load_tensors(pt).at("w"), in.at("w")));
    const std::string junk = tmp("junk.bin");
    write_bytes(junk, std::string(64, 'z'));
    EXPECT_EQ(model_error_of([&] { load_tensors(junk); }),
              junk + ": unknown checkpoint format (neither safetensors nor a torch.save zip archive)");
    const std::string legacy = tmp("legacy_magic.pth");
    write_bytes(legacy, std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15));
    EXPECT_CONTAINS(model_error_of([&] { load_tensors(legacy); }),
                    "legacy (pre-1.6, non-zip) torch.save format");
}

TEST(Checkpoint, MutatedFilesThrowOnlyModelError) {
    // Random byte flips and truncations of valid files: every outcome is a result whose tensors can be
    // read completely, or a flashvsr::ModelError; never another exception or a crash.
    std::mt19937 rng(1234);
    const TensorMap in{
        {"a", at::randn({3, 4})}, {"b", at::randn({5}).to(at::kBFloat16)}, {"c", at::tensor(7)}};
    int results = 0, errors = 0;
    auto check = [&](const std::string& path, const std::function<TensorMap()>& read, int i) {
        try {
            for (const auto& [k, t] : read()) {
                (void)t.clone();  // touches every element of the view
            }
            ++results;
        } catch (const flashvsr::ModelError&) {
            ++errors;
        } catch (const std::exception& e) {
            ADD_FAILURE() << "mutation " << i << " of " << path << ": not a ModelError: " << e.what();
        }
    };
    auto mutate = [&](std::string bytes, size_t region) {
        if (rng() % 4 == 0) {
            return bytes.substr(0, rng() % bytes.size());
        }
        for (int f = 0, n = 1 + static_cast<int>(rng() % 4); f < n; ++f) {
            bytes[rng() % std::min(region, bytes.size())] = static_cast<char>(rng() % 256);
        }
        return bytes;
    };
    const std::string st = tmp("fuzz_src.safetensors"), st_bad = tmp("fuzz.safetensors");
    write_safetensors(st, in);
    const std::string st_bytes = read_bytes(st);
    const auto read_st_bad = [&] { return read_safetensors(st_bad).tensors; };
    for (int i = 0; i < 300; ++i) {
        write_bytes(st_bad, mutate(st_bytes, st_bytes.size() - 64));  // mostly the length and the header
        check(st_bad, read_st_bad, i);
    }
    const std::string pt = tmp("fuzz_src.pth"), pt_bad = tmp("fuzz.pth");
    const auto read_pt_bad = [&] { return read_torch_file(pt_bad).tensors; };
    write_torch_file(pt, in);
    caffe2::serialize::PyTorchStreamReader src(pt);
    auto [pkl, pkl_size] = src.getRecord("data.pkl");
    const std::string pickle(static_cast<const char*>(pkl.get()), pkl_size);
    for (int i = 0; i < 300; ++i) {
        {
            caffe2::serialize::PyTorchStreamWriter w(pt_bad);
            const std::string p = mutate(pickle, pickle.size());
            w.writeRecord("data.pkl", p.data(), p.size());
            for (const char* r : {"data/0", "data/1", "data/2"}) {
                auto [d, n] = src.getRecord(r);
                w.writeRecord(r, d.get(), n);
            }
            w.writeEndOfFile();
        }
        check(pt_bad, read_pt_bad, i);
    }
    const std::string pt_bytes = read_bytes(pt);  // the zip container itself (directory, local headers)
    for (int i = 0; i < 300; ++i) {
        write_bytes(pt_bad, mutate(pt_bytes, pt_bytes.size()));
        check(pt_bad, read_pt_bad, i);
    }
    EXPECT_GT(errors, 400);  // most mutations are caught ...
    EXPECT_GT(results, 0);   // ... and some (e.g. in key strings or padding) still read
}

// ---- against the pinned Python ------------------------------------------------------------------------

namespace {

/// One Python run (importing torch dominates the time): C++ writes its files, then Python writes the
/// fixtures and summarises the C++ files into summary.txt.
struct PythonRun {
    std::string dir;
    TensorMap in, dense;  // what C++ wrote: torch files from `in`, ours.safetensors from `dense`
    bool ok = false;
    std::string log;
};

const PythonRun& python_run() {
    static const PythonRun run = [] {
        PythonRun r;
        r.dir = tmp("py");
        fs::create_directories(r.dir);
        r.in = mixed_tensors();
        write_torch_file(r.dir + "/ours_od.pth", r.in, true);
        write_torch_file(r.dir + "/ours_dict.pth", r.in, false);
        write_torch_tensor(r.dir + "/ours_t.pth", r.in.at("view_b"));
        for (const auto& [k, t] : r.in) {
            r.dense[k] = t.contiguous();
        }
        write_safetensors(r.dir + "/ours.safetensors", r.dense, {{"format", "pt"}});
        r.ok = run_python("python_checks", std::string(kFixtureScript) + kCheckScript, "\"" + r.dir + "\"",
                          &r.log);
        return r;
    }();
    return run;
}

/// C++ reads what torch.save and safetensors.torch.save_file wrote: values bit-exact against
/// expected.safetensors, views/offsets/shared storages kept, zero-copy, legacy file refused.
void check_cpp_reads_python_files(const PythonRun& py) {
    const std::string& dir = py.dir;
    const TensorMap expected = read_safetensors(dir + "/expected.safetensors").tensors;
    const std::vector<std::string> plain_keys{"f32",    "f16",   "bf16",   "f64",   "i64", "i32",
                                              "i16",    "i8",    "u8",     "bool",  "f8",  "f8b",
                                              "scalar", "empty", "view_a", "view_b"};
    for (const char* file : {"dict.pth", "cuda_unaligned.pth", "plain.safetensors"}) {
        const std::string path = dir + "/" + file;
        const TensorMap got = load_tensors(path);
        ASSERT_EQ(got.size(), plain_keys.size()) << file;
        for (const auto& k : plain_keys) {
            ASSERT_TRUE(got.count(k)) << file << " " << k;
            EXPECT_TRUE(same_bits(got.at(k), expected.at(k))) << file << " " << k;
        }
        if (std::string(file) != "plain.safetensors") {
            EXPECT_EQ(got.at("view_a").storage().data(), got.at("view_b").storage().data()) << file;
            EXPECT_EQ(got.at("view_b").strides(), (std::vector<int64_t>{1, 4})) << file;
            EXPECT_EQ(got.at("view_b").storage_offset(), 5) << file;
            EXPECT_EQ(got.at("view_a").storage_offset(), 2) << file;
        }
    }
    EXPECT_TRUE(in_mapping_of(load_tensors(dir + "/dict.pth").at("f32"), dir + "/dict.pth"));
    EXPECT_TRUE(
        in_mapping_of(load_tensors(dir + "/plain.safetensors").at("f32"), dir + "/plain.safetensors"));
    EXPECT_EQ(read_safetensors(dir + "/plain.safetensors").metadata.at("format"), "pt");

    const TorchFile sd = read_torch_file(dir + "/state_dict.pth");  // an OrderedDict with _metadata (BUILD)
    size_t n_sd = 0;
    for (const auto& [k, t] : expected) {
        if (k.rfind("sd.", 0) == 0) {
            ++n_sd;
            ASSERT_TRUE(sd.tensors.count(k.substr(3))) << k;
            EXPECT_TRUE(same_bits(sd.tensors.at(k.substr(3)), t)) << k;
        }
    }
    EXPECT_EQ(sd.tensors.size(), n_sd);
    EXPECT_EQ(n_sd, 9u);  // conv w/b, bn w/b/mean/var/num_batches_tracked, linear w/b
    EXPECT_EQ(sd.tensors.at("1.num_batches_tracked").dim(), 0);

    const TorchFile bare = read_torch_file(dir + "/bare.pth");
    ASSERT_TRUE(bare.tensor.has_value());
    EXPECT_TRUE(same_bits(*bare.tensor, expected.at("bare")));

    const std::string legacy = dir + "/legacy.pth";
    EXPECT_EQ(model_error_of([&] { load_tensors(legacy); }),
              legacy +
                  ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it in Python "
                  "with torch.save(torch.load(path, weights_only=True), path) (the zip format, the default "
                  "since PyTorch 1.6) or convert it with safetensors.torch.save_file");
}

/// Python's torch.load(weights_only=True) and safe_open read what C++ wrote: container type, dtype,
/// shape, stride, offset, MD5 of the bytes and storage sharing per tensor; ours.safetensors equals
/// the file save_file writes from the same tensors byte for byte.
void check_python_reads_cpp_files(const PythonRun& py) {
    const std::string& dir = py.dir;
    const TensorMap& in = py.in;
    const TensorMap& dense = py.dense;
    const std::string expected =
        "ours_od.pth type OrderedDict\n" + summary("ours_od.pth", in, false) + "ours_dict.pth type dict\n" +
        summary("ours_dict.pth", in, false) + "ours_t.pth type Tensor\n" +
        summary("ours_t.pth", {{"tensor", in.at("view_b")}}, false) +
        "ours.safetensors metadata [('format', 'pt')]\n" + summary("ours.safetensors", dense, true) +
        "ours.safetensors byte-identical to safetensors.torch.save_file: True\n";
    EXPECT_EQ(read_bytes(dir + "/summary.txt"), expected);
}

}  // namespace

// One test, so that CTest (one process per test) starts Python (and imports torch) once.
TEST(CheckpointPython, FilesRoundTripWithTorchAndSafetensors) {
    const PythonRun& py = python_run();
    ASSERT_TRUE(py.ok) << py.log;
    {
        SCOPED_TRACE("C++ reads files written by Python");
        check_cpp_reads_python_files(py);
    }
    {
        SCOPED_TRACE("Python reads files written by C++");
        check_python_reads_cpp_files(py);
    }
}
