#include "models/checkpoint/torch_pickle.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <cstring>
#include <map>

namespace flashvsr::models {

const std::vector<TorchDtype>& torch_dtypes() {
    static const std::vector<TorchDtype> table{
        {at::kFloat, "FloatStorage", "float32"},
        {at::kHalf, "HalfStorage", "float16"},
        {at::kBFloat16, "BFloat16Storage", "bfloat16"},
        {at::kDouble, "DoubleStorage", "float64"},
        {at::kLong, "LongStorage", "int64"},
        {at::kInt, "IntStorage", "int32"},
        {at::kShort, "ShortStorage", "int16"},
        {at::kChar, "CharStorage", "int8"},
        {at::kByte, "ByteStorage", "uint8"},
        {at::kBool, "BoolStorage", "bool"},
        {at::kFloat8_e4m3fn, nullptr, "float8_e4m3fn"},
        {at::kFloat8_e5m2, nullptr, "float8_e5m2"},
    };
    return table;
}

const TorchDtype& torch_dtype(at::ScalarType t, const std::string& source) {
    for (const auto& d : torch_dtypes()) {
        if (d.type == t) {
            return d;
        }
    }
    throw ModelError(source + ": dtype " + std::string(c10::toString(t)) +
                     " is not supported in torch files");
}

namespace {

// ---- pickler --------------------------------------------------------------------------------------

class Pickler {
  public:
    explicit Pickler(const std::string& source) : source_(source) { out_ += "\x80\x02"; }  // PROTO 2

    void op(char c) { out_ += c; }
    void string(const std::string& s) {  // BINUNICODE (the opcode torch.save and weights_only use)
        op('X');
        le<uint32_t>(static_cast<uint32_t>(s.size()));
        out_ += s;
    }
    void integer(int64_t x) {
        if (x >= 0 && x <= 0xff) {
            op('K');
            le<uint8_t>(static_cast<uint8_t>(x));
        } else if (x >= 0 && x <= 0xffff) {
            op('M');
            le<uint16_t>(static_cast<uint16_t>(x));
        } else if (x >= INT32_MIN && x <= INT32_MAX) {
            op('J');
            le<int32_t>(static_cast<int32_t>(x));
        } else {  // LONG1 with the fewest bytes that keep the sign, as Python's encode_long
            uint8_t bytes[8];
            std::memcpy(bytes, &x, 8);
            int n = 8;
            while (n > 1 && ((bytes[n - 1] == 0x00 && !(bytes[n - 2] & 0x80)) ||
                             (bytes[n - 1] == 0xff && (bytes[n - 2] & 0x80)))) {
                --n;
            }
            op('\x8a');
            le<uint8_t>(static_cast<uint8_t>(n));
            out_.append(reinterpret_cast<const char*>(bytes), n);
        }
    }
    void int_tuple(const std::vector<int64_t>& v) {
        if (v.empty()) {
            op(')');
            return;
        }
        if (v.size() > 3) {
            op('(');
        }
        for (int64_t x : v) {
            integer(x);
        }
        op(v.size() == 1 ? '\x85' : v.size() == 2 ? '\x86' : v.size() == 3 ? '\x87' : 't');
    }
    /// GLOBAL once, then BINGET from the memo.
    void global(const std::string& module, const std::string& name) {
        const std::string k = module + "\n" + name + "\n";
        auto it = memo_.find(k);
        if (it != memo_.end()) {
            get(it->second);
            return;
        }
        op('c');
        out_ += k;
        const uint32_t idx = static_cast<uint32_t>(memo_.size());
        memo_[k] = idx;
        if (idx < 256) {
            op('q');
            le<uint8_t>(static_cast<uint8_t>(idx));
        } else {
            op('r');
            le<uint32_t>(idx);
        }
    }
    void empty_ordered_dict() {
        global("collections", "OrderedDict");
        op(')');
        op('R');
    }
    void tensor(const PickledTensorRef& t) {
        const TorchDtype& d = torch_dtype(t.dtype, source_);
        const bool typed = d.storage != nullptr;
        global("torch._utils", typed ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
        op('(');
        op('(');  // persistent id
        string("storage");
        typed ? global("torch", d.storage) : global("torch.storage", "UntypedStorage");
        string(t.storage_key);
        string("cpu");
        integer(static_cast<int64_t>(typed ? t.storage_numel : t.storage_numel * c10::elementSize(t.dtype)));
        op('t');
        op('Q');  // BINPERSID
        integer(t.offset);
        int_tuple(t.sizes);
        int_tuple(t.strides);
        op('\x89');            // requires_grad = False
        empty_ordered_dict();  // backward_hooks
        if (!typed) {
            global("torch", d.name);
        }
        op('t');
        op('R');
    }
    std::string finish() {
        op('.');
        return std::move(out_);
    }

  private:
    template <typename T>
    void le(T v) {
        out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    }
    void get(uint32_t idx) {
        if (idx < 256) {
            op('h');
            le<uint8_t>(static_cast<uint8_t>(idx));
        } else {
            op('j');
            le<uint32_t>(idx);
        }
    }
    const std::string& source_;
    std::string out_;
    std::map<std::string, uint32_t> memo_;
};

}  // namespace

bool has_typed_storage(at::ScalarType dtype, const std::string& source) {
    return torch_dtype(dtype, source).storage != nullptr;
}

std::string pickle_tensor_dict(const std::vector<std::pair<std::string, PickledTensorRef>>& items,
                               bool ordered_dict, const std::string& source) {
    Pickler p(source);
    if (ordered_dict) {
        p.empty_ordered_dict();
    } else {
        p.op('}');
    }
    // Python's pickler: batches of at most 1000 items, SETITEM for a batch of one.
    constexpr size_t kBatch = 1000;
    for (size_t b = 0; b < items.size(); b += kBatch) {
        const size_t e = std::min(items.size(), b + kBatch);
        if (e - b > 1) {
            p.op('(');
        }
        for (size_t i = b; i < e; ++i) {
            p.string(items[i].first);
            p.tensor(items[i].second);
        }
        p.op(e - b > 1 ? 'u' : 's');
    }
    return p.finish();
}

std::string pickle_tensor(const PickledTensorRef& t, const std::string& source) {
    Pickler p(source);
    p.tensor(t);
    return p.finish();
}

}  // namespace flashvsr::models
