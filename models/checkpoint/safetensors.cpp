#include "models/checkpoint/safetensors.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "models/checkpoint/mapped_file.h"

namespace flashvsr::models {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit

/// One safetensors dtype name. `rank` is the reference writer's ordering (higher first); dtypes the
/// reader does not support have no ScalarType.
struct DtypeInfo {
    const char* name;
    std::optional<at::ScalarType> type;
    int rank;
};

const std::vector<DtypeInfo>& dtype_table() {
    static const std::vector<DtypeInfo> table{
        {"BOOL", at::kBool, 0},
        {"U8", at::kByte, 1},
        {"I8", at::kChar, 2},
        {"F8_E5M2", at::kFloat8_e5m2, 3},
        {"F8_E4M3", at::kFloat8_e4m3fn, 4},
        {"I16", at::kShort, 5},
        {"F16", at::kHalf, 6},
        {"BF16", at::kBFloat16, 7},
        {"I32", at::kInt, 8},
        {"F32", at::kFloat, 9},
        {"F64", at::kDouble, 10},
        {"I64", at::kLong, 11},
        // Standard dtypes this engine does not read (no use in FlashVSR, thin LibTorch support).
        {"F4", std::nullopt, -1},
        {"F6_E2M3", std::nullopt, -1},
        {"F6_E3M2", std::nullopt, -1},
        {"F8_E8M0", std::nullopt, -1},
        {"F8_E4M3FNUZ", std::nullopt, -1},
        {"F8_E5M2FNUZ", std::nullopt, -1},
        {"U16", std::nullopt, -1},
        {"U32", std::nullopt, -1},
        {"U64", std::nullopt, -1},
        {"C64", std::nullopt, -1},
    };
    return table;
}

const DtypeInfo* find_dtype(const std::string& name) {
    for (const auto& d : dtype_table()) {
        if (name == d.name) {
            return &d;
        }
    }
    return nullptr;
}

const DtypeInfo& dtype_of(at::ScalarType t, const std::string& path, const std::string& key) {
    for (const auto& d : dtype_table()) {
        if (d.type == t) {
            return d;
        }
    }
    throw ModelError(path + ": tensor '" + key + "' has dtype " + std::string(c10::toString(t)) +
                     ", which safetensors files written by flashvsr do not support");
}

std::string short_json(const nlohmann::json& j) {
    std::string s = j.dump();
    return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

/// A non-negative integer from `j` or a ModelError naming `what`.
uint64_t as_count(const nlohmann::json& j, const std::string& what) {
    if (!j.is_number_unsigned()) {
        throw ModelError(what + " must be a non-negative integer, got " + short_json(j));
    }
    return j.get<uint64_t>();
}

struct Entry {
    std::string key;
    at::ScalarType type;
    std::vector<int64_t> shape;
    uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& key, const nlohmann::json& info,
                  uint64_t buffer_size) {
    const std::string where = path + ": tensor '" + key + "'";
    if (!info.is_object()) {
        throw ModelError(where + ": header entry must be a JSON object, got " + short_json(info));
    }
    for (const char* field : {"dtype", "shape", "data_offsets"}) {
        if (!info.contains(field)) {
            throw ModelError(where + ": header entry has no '" + field + "'");
        }
    }
    const auto& jd = info["dtype"];
    if (!jd.is_string()) {
        throw ModelError(where + ": dtype must be a string, got " + short_json(jd));
    }
    const std::string dname = jd.get<std::string>();
    const DtypeInfo* d = find_dtype(dname);
    if (d == nullptr) {
        throw ModelError(where + ": unknown dtype '" + dname + "'");
    }
    if (!d->type) {
        throw ModelError(where + ": dtype '" + dname +
                         "' is not supported (supported: F64 F32 F16 BF16 I64 "
                         "I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2)");
    }
    Entry e{key, *d->type, {}, 0, 0};

    const auto& js = info["shape"];
    if (!js.is_array()) {
        throw ModelError(where + ": shape must be an array, got " + short_json(js));
    }
    uint64_t numel = 1;
    for (const auto& dim : js) {
        const uint64_t n = as_count(dim, where + ": shape entry");
        if (n > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel)) {
            throw ModelError(where + ": shape " + short_json(js) + " overflows 64 bits");
        }
        e.shape.push_back(static_cast<int64_t>(n));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(c10::elementSize(e.type)), &nbytes) ||
        numel > static_cast<uint64_t>(INT64_MAX)) {
        throw ModelError(where + ": shape " + short_json(js) + " overflows 64 bits");
    }

    const auto& jo = info["data_offsets"];
    if (!jo.is_array() || jo.size() != 2) {
        throw ModelError(where + ": data_offsets must be [begin, end], got " + short_json(jo));
    }
    e.begin = as_count(jo[0], where + ": data_offsets begin");
    e.end = as_count(jo[1], where + ": data_offsets end");
    if (e.begin > e.end || e.end > buffer_size) {
        throw ModelError(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                         "] outside the data buffer of " + std::to_string(buffer_size) + " bytes");
    }
    if (e.end - e.begin != nbytes) {
        throw ModelError(where + ": data_offsets span " + std::to_string(e.end - e.begin) +
                         " bytes, but shape " + short_json(js) + " of " + dname + " needs " +
                         std::to_string(nbytes));
    }
    return e;
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
    const auto file = MappedFile::open(path);
    const uint64_t size = file->size();
    if (size < 8) {
        throw ModelError(path + ": not a safetensors file (" + std::to_string(size) +
                         " bytes, shorter than the 8-byte header length)");
    }
    uint64_t n = 0;
    std::memcpy(&n, file->data(), 8);  // little-endian (x86-64 / aarch64)
    if (n > kMaxHeaderBytes) {
        throw ModelError(path + ": safetensors header length " + std::to_string(n) +
                         " exceeds the limit of " + std::to_string(kMaxHeaderBytes) + " bytes");
    }
    if (8 + n > size) {
        throw ModelError(path + ": safetensors header length " + std::to_string(n) +
                         " runs past the end of the " + std::to_string(size) + "-byte file (truncated?)");
    }
    const char* hdr = reinterpret_cast<const char*>(file->data() + 8);
    if (n == 0 || hdr[0] != '{') {
        throw ModelError(path + ": safetensors header does not start with '{'");
    }

    // Duplicate top-level keys are an error; nlohmann would silently keep the last one.
    std::set<std::string> seen;
    std::optional<std::string> duplicate;
    const nlohmann::json::parser_callback_t cb = [&](int depth, nlohmann::json::parse_event_t ev,
                                                     nlohmann::json& parsed) {
        if (ev == nlohmann::json::parse_event_t::key && depth == 1 &&
            !seen.insert(parsed.get<std::string>()).second && !duplicate) {
            duplicate = parsed.get<std::string>();
        }
        return true;
    };
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(hdr, hdr + n, cb);
    } catch (const nlohmann::json::exception& e) {
        throw ModelError(path + ": safetensors header is not valid JSON (" + e.what() + ")");
    }
    if (!header.is_object()) {
        throw ModelError(path + ": safetensors header must be a JSON object");
    }
    if (duplicate) {
        throw ModelError(path + ": safetensors header has the key '" + *duplicate + "' twice");
    }

    SafetensorsFile out;
    const uint64_t data_start = 8 + n;
    const uint64_t buffer_size = size - data_start;
    std::vector<Entry> entries;
    entries.reserve(header.size());
    for (const auto& [key, info] : header.items()) {
        if (key == "__metadata__") {
            if (!info.is_object()) {
                throw ModelError(path + ": __metadata__ must be a JSON object of strings");
            }
            for (const auto& [mk, mv] : info.items()) {
                if (!mv.is_string()) {
                    throw ModelError(path + ": __metadata__ value of '" + mk + "' must be a string, got " +
                                     short_json(mv));
                }
                out.metadata[mk] = mv.get<std::string>();
            }
            continue;
        }
        entries.push_back(parse_entry(path, key, info, buffer_size));
    }

    // No two non-empty spans may share a byte.
    std::vector<const Entry*> order;
    for (const auto& e : entries) {
        if (e.end > e.begin) {
            order.push_back(&e);
        }
    }
    std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
    for (size_t i = 1; i < order.size(); ++i) {
        if (order[i]->begin < order[i - 1]->end) {
            throw ModelError(path + ": tensors '" + order[i - 1]->key + "' [" +
                             std::to_string(order[i - 1]->begin) + ", " + std::to_string(order[i - 1]->end) +
                             ") and '" + order[i]->key + "' [" + std::to_string(order[i]->begin) + ", " +
                             std::to_string(order[i]->end) + ") overlap in the data buffer");
        }
    }

    for (const auto& e : entries) {
        out.tensors.emplace(e.key, file->view(static_cast<size_t>(data_start + e.begin), e.shape, e.type));
    }
    file->check_intact();  // the header was read from the file as it was when mapped
    return out;
}

void write_safetensors(const std::string& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
    struct Item {
        const std::string* key;
        const DtypeInfo* dtype;
        at::Tensor data;  // contiguous CPU
    };
    std::vector<Item> items;
    items.reserve(tensors.size());
    for (const auto& [key, t] : tensors) {
        if (key == "__metadata__") {
            throw ModelError(path + ": '__metadata__' cannot be a tensor key");
        }
        if (!t.defined()) {
            throw ModelError(path + ": tensor '" + key + "' is undefined");
        }
        if (t.layout() != at::kStrided || t.is_quantized()) {
            throw ModelError(path + ": tensor '" + key + "' is not a dense tensor");
        }
        const DtypeInfo& d = dtype_of(t.scalar_type(), path, key);
        items.push_back(Item{&key, &d, t.resolve_conj().resolve_neg().to(at::kCPU).contiguous()});
    }
    std::stable_sort(items.begin(), items.end(), [](const Item& a, const Item& b) {
        return a.dtype->rank != b.dtype->rank ? a.dtype->rank > b.dtype->rank : *a.key < *b.key;
    });

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) {
        header["__metadata__"] = metadata;
    }
    uint64_t offset = 0;
    for (const auto& it : items) {
        const uint64_t nbytes = it.data.nbytes();
        nlohmann::ordered_json e;
        e["dtype"] = it.dtype->name;
        e["shape"] = it.data.sizes().vec();
        e["data_offsets"] = {offset, offset + nbytes};
        header[*it.key] = std::move(e);
        offset += nbytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {  // e.g. a key or metadata string that is not UTF-8
        throw ModelError(path + ": cannot write the safetensors header (" + e.what() + ")");
    }
    text.append((8 - text.size() % 8) % 8, ' ');

    write_file_atomically(path, [&](std::ostream& os) {
        const uint64_t n = text.size();
        os.write(reinterpret_cast<const char*>(&n), 8);
        os.write(text.data(), static_cast<std::streamsize>(text.size()));
        for (const auto& it : items) {
            os.write(static_cast<const char*>(it.data.data_ptr()),
                     static_cast<std::streamsize>(it.data.nbytes()));
        }
    });
}

}  // namespace flashvsr::models
