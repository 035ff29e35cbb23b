#include "models/checkpoint/torch_pickle.h"

#include <flashvsr/errors.h>

#include <ATen/ATen.h>

#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>

#include "models/checkpoint/mapped_file.h"

namespace flashvsr::models {
namespace {

// ---- values ----------------------------------------------------------------------------------------

enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::None:
            return "None";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::String:
            return "str";
        case Kind::Tuple:
            return "tuple";
        case Kind::List:
            return "list";
        case Kind::Dict:
            return "dict";
        case Kind::Global:
            return "global";
        case Kind::Storage:
            return "storage";
        case Kind::Tensor:
            return "tensor";
    }
    return "?";
}

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
    Kind kind = Kind::None;
    bool b = false;
    int64_t i = 0;
    double f = 0;
    std::string s;                                     // String; Global: "module.name"
    std::vector<ValuePtr> items;                       // Tuple, List
    std::vector<std::pair<ValuePtr, ValuePtr>> dict;   // Dict, in insertion order
    std::unordered_map<std::string, size_t> str_keys;  // Dict: position of each str key in `dict`
    std::optional<at::ScalarType> storage_dtype;       // Storage: typed storage dtype (nullopt: untyped)
    c10::Storage storage;                              // Storage
    at::Tensor tensor;                                 // Tensor
};

// The allow-list. Nothing here is ever executed: each name maps to a C++ re-implementation below.
bool allowed_global(const std::string& g) {
    static const std::vector<std::string> fixed{
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch.storage.UntypedStorage"};
    for (const auto& f : fixed) {
        if (g == f) {
            return true;
        }
    }
    for (const auto& d : torch_dtypes()) {
        if ((d.storage != nullptr && g == std::string("torch.") + d.storage) ||
            g == std::string("torch.") + d.name) {
            return true;
        }
    }
    return false;
}

class Unpickler {
  public:
    Unpickler(const uint8_t* data, size_t size, const std::string& source, const StorageLoader& load)
        : p_(data), end_(data + size), begin_(data), source_(source), load_(load) {}

    /// Unlinks every value made, so that freeing them never recurses (deep nesting) and cycles built
    /// through the memo are released. Read the result before the unpickler goes.
    ~Unpickler() {
        for (auto& v : made_) {
            v->items.clear();
            v->dict.clear();
        }
    }
    Unpickler(const Unpickler&) = delete;
    Unpickler& operator=(const Unpickler&) = delete;

    ValuePtr run();

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw ModelError(source_ + ": data.pkl: " + what + " (at byte " + std::to_string(op_pos_) + ")");
    }
    const uint8_t* take(size_t n) {
        if (static_cast<size_t>(end_ - p_) < n) {
            fail("truncated pickle");
        }
        const uint8_t* q = p_;
        p_ += n;
        return q;
    }
    template <typename T>
    T read_le() {
        T v{};
        std::memcpy(&v, take(sizeof(T)), sizeof(T));
        return v;
    }
    std::string read_line() {
        const uint8_t* nl = static_cast<const uint8_t*>(std::memchr(p_, '\n', end_ - p_));
        if (nl == nullptr) {
            fail("truncated pickle (unterminated GLOBAL)");
        }
        std::string s(reinterpret_cast<const char*>(p_), nl - p_);
        p_ = nl + 1;
        return s;
    }
    ValuePtr pop() {
        if (stack_.size() <= floor()) {
            fail("pickle stack underflow");
        }
        ValuePtr v = std::move(stack_.back());
        stack_.pop_back();
        return v;
    }
    ValuePtr& top() {
        if (stack_.size() <= floor()) {
            fail("pickle stack underflow");
        }
        return stack_.back();
    }
    size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    std::vector<ValuePtr> pop_mark() {
        if (marks_.empty()) {
            fail("pickle MARK missing");
        }
        const size_t m = marks_.back();
        marks_.pop_back();
        std::vector<ValuePtr> v(std::make_move_iterator(stack_.begin() + m),
                                std::make_move_iterator(stack_.end()));
        stack_.resize(m);
        return v;
    }
    void push(ValuePtr v) { stack_.push_back(std::move(v)); }
    ValuePtr make(Kind k) {
        auto v = std::make_shared<Value>();
        v->kind = k;
        made_.push_back(v);
        return v;
    }
    ValuePtr make_int(int64_t x) {
        auto v = make(Kind::Int);
        v->i = x;
        return v;
    }
    ValuePtr make_string(std::string s) {
        auto v = make(Kind::String);
        v->s = std::move(s);
        return v;
    }
    ValuePtr make_tuple(std::vector<ValuePtr> items) {
        auto v = make(Kind::Tuple);
        v->items = std::move(items);
        return v;
    }
    void set_item(Value& d, ValuePtr k, ValuePtr v) {
        if (d.kind != Kind::Dict) {
            fail(std::string("SETITEM on a ") + kind_name(d.kind));
        }
        if (k->kind == Kind::String) {  // a repeated key replaces the value in place (Python semantics)
            const auto [it, fresh] = d.str_keys.emplace(k->s, d.dict.size());
            if (!fresh) {
                d.dict[it->second].second = std::move(v);
                return;
            }
        }
        d.dict.emplace_back(std::move(k), std::move(v));
    }
    void append(Value& l, ValuePtr v) {
        if (l.kind != Kind::List) {
            fail(std::string("APPEND on a ") + kind_name(l.kind));
        }
        l.items.push_back(std::move(v));
    }
    ValuePtr global(const std::string& module, const std::string& name) {
        const std::string g = module + "." + name;
        if (!allowed_global(g)) {
            throw ModelError(source_ + ": pickle references forbidden global '" + g +
                             "' (no code from a checkpoint is executed)");
        }
        auto v = make(Kind::Global);
        v->s = g;
        return v;
    }
    ValuePtr persistent_load(const ValuePtr& pid);
    ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args);
    ValuePtr rebuild_tensor(const std::vector<ValuePtr>& a, bool v3);
    int64_t as_int(const ValuePtr& v, const char* what) const {
        if (v->kind != Kind::Int) {
            fail(std::string(what) + " must be an int, got " + kind_name(v->kind));
        }
        return v->i;
    }
    std::vector<int64_t> as_int_tuple(const ValuePtr& v, const char* what) const {
        if (v->kind != Kind::Tuple) {
            fail(std::string(what) + " must be a tuple, got " + kind_name(v->kind));
        }
        std::vector<int64_t> out;
        for (const auto& x : v->items) {
            const int64_t n = as_int(x, what);
            if (n < 0) {
                fail(std::string(what) + " has a negative entry " + std::to_string(n));
            }
            out.push_back(n);
        }
        return out;
    }

    const uint8_t* p_;
    const uint8_t* end_;
    const uint8_t* begin_;
    size_t op_pos_ = 0;
    const std::string& source_;
    const StorageLoader& load_;
    std::vector<ValuePtr> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, ValuePtr> memo_;
    std::map<std::string, std::pair<c10::Storage, uint64_t>> storages_;  // key -> storage, nbytes
    std::vector<ValuePtr> made_;
};

ValuePtr Unpickler::run() {
    while (true) {
        op_pos_ = static_cast<size_t>(p_ - begin_);
        const uint8_t op = *take(1);
        switch (op) {
            case 0x80:  // PROTO
                if (*take(1) > 5) {
                    fail("unsupported pickle protocol");
                }
                break;
            case 0x95:  // FRAME (protocol 4): the frame length is only a hint
                take(8);
                break;
            case '.': {  // STOP
                if (!marks_.empty() || stack_.size() != 1) {
                    fail("malformed pickle (STOP with " + std::to_string(stack_.size()) +
                         " values on the stack)");
                }
                return stack_.back();
            }
            case '(':  // MARK
                if (marks_.size() >= 1000) {
                    fail("too many nested MARKs");
                }
                marks_.push_back(stack_.size());
                break;
            case '0':  // POP
                pop();
                break;
            case '1':  // POP_MARK
                pop_mark();
                break;
            case 'N':
                push(make(Kind::None));
                break;
            case 0x88:    // NEWTRUE
            case 0x89: {  // NEWFALSE
                auto v = make(Kind::Bool);
                v->b = op == 0x88;
                push(v);
                break;
            }
            case 'J':
                push(make_int(read_le<int32_t>()));
                break;  // BININT
            case 'K':
                push(make_int(read_le<uint8_t>()));
                break;  // BININT1
            case 'M':
                push(make_int(read_le<uint16_t>()));
                break;    // BININT2
            case 0x8a: {  // LONG1: n-byte little-endian two's complement
                const uint8_t n = *take(1);
                if (n > 8) {
                    fail("integer wider than 64 bits");
                }
                const uint8_t* b = take(n);
                uint64_t u = 0;
                for (int k = n - 1; k >= 0; --k) {
                    u = (u << 8) | b[k];
                }
                if (n > 0 && n < 8 && (b[n - 1] & 0x80)) {
                    u |= ~uint64_t{0} << (8 * n);  // sign-extend
                }
                push(make_int(static_cast<int64_t>(u)));
                break;
            }
            case 'G': {  // BINFLOAT: big-endian double
                const uint8_t* b = take(8);
                uint64_t u = 0;
                for (int k = 0; k < 8; ++k) {
                    u = (u << 8) | b[k];
                }
                auto v = make(Kind::Float);
                std::memcpy(&v->f, &u, 8);
                push(v);
                break;
            }
            case 'X':     // BINUNICODE
            case 0x8c:    // SHORT_BINUNICODE
            case 0x8d: {  // BINUNICODE8
                const uint64_t n = op == 'X'    ? read_le<uint32_t>()
                                   : op == 0x8c ? read_le<uint8_t>()
                                                : read_le<uint64_t>();
                if (n > static_cast<uint64_t>(end_ - p_)) {
                    fail("truncated pickle (string of " + std::to_string(n) + " bytes)");
                }
                const uint8_t* b = take(static_cast<size_t>(n));
                push(make_string(std::string(reinterpret_cast<const char*>(b), n)));
                break;
            }
            case ')':
                push(make(Kind::Tuple));
                break;  // EMPTY_TUPLE
            case ']':
                push(make(Kind::List));
                break;  // EMPTY_LIST
            case '}':
                push(make(Kind::Dict));
                break;  // EMPTY_DICT
            case 't':
                push(make_tuple(pop_mark()));
                break;    // TUPLE
            case 0x85:    // TUPLE1
            case 0x86:    // TUPLE2
            case 0x87: {  // TUPLE3
                const size_t n = op - 0x84;
                std::vector<ValuePtr> items(n);
                for (size_t k = n; k-- > 0;) {
                    items[k] = pop();
                }
                push(make_tuple(std::move(items)));
                break;
            }
            case 'l': {  // LIST
                auto items = pop_mark();
                auto v = make(Kind::List);
                for (auto& x : items) {
                    append(*v, std::move(x));
                }
                push(v);
                break;
            }
            case 'd': {  // DICT
                auto items = pop_mark();
                if (items.size() % 2 != 0) {
                    fail("DICT with an odd number of items");
                }
                auto v = make(Kind::Dict);
                for (size_t k = 0; k < items.size(); k += 2) {
                    set_item(*v, items[k], items[k + 1]);
                }
                push(v);
                break;
            }
            case 'a': {  // APPEND
                auto v = pop();
                append(*top(), std::move(v));
                break;
            }
            case 'e': {  // APPENDS
                auto items = pop_mark();
                auto& l = top();
                for (auto& x : items) {
                    append(*l, std::move(x));
                }
                break;
            }
            case 's': {  // SETITEM
                auto v = pop();
                auto k = pop();
                set_item(*top(), std::move(k), std::move(v));
                break;
            }
            case 'u': {  // SETITEMS
                auto items = pop_mark();
                if (items.size() % 2 != 0) {
                    fail("SETITEMS with an odd number of items");
                }
                auto& d = top();
                for (size_t k = 0; k < items.size(); k += 2) {
                    set_item(*d, items[k], items[k + 1]);
                }
                break;
            }
            case 'c': {  // GLOBAL "module\nname\n"
                std::string module = read_line();
                std::string name = read_line();
                push(global(module, name));
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                auto name = pop();
                auto module = pop();
                if (module->kind != Kind::String || name->kind != Kind::String) {
                    fail("STACK_GLOBAL needs two strings");
                }
                push(global(module->s, name->s));
                break;
            }
            case 'R': {  // REDUCE
                auto args = pop();
                auto callable = pop();
                push(reduce(callable, args));
                break;
            }
            case 'b': {  // BUILD: only the OrderedDict of a state_dict (its `_metadata` attribute, ignored)
                pop();   // the state
                if (top()->kind != Kind::Dict) {
                    fail(std::string("BUILD on a ") + kind_name(top()->kind) + " is not supported");
                }
                break;
            }
            case 'Q': {  // BINPERSID
                auto pid = pop();
                push(persistent_load(pid));
                break;
            }
            case 'q':
                memo_[read_le<uint8_t>()] = top();
                break;  // BINPUT
            case 'r':
                memo_[read_le<uint32_t>()] = top();
                break;    // LONG_BINPUT
            case 0x94: {  // MEMOIZE
                const uint64_t idx = memo_.size();
                memo_[idx] = top();
                break;
            }
            case 'h':    // BINGET
            case 'j': {  // LONG_BINGET
                const uint64_t idx = op == 'h' ? read_le<uint8_t>() : read_le<uint32_t>();
                auto it = memo_.find(idx);
                if (it == memo_.end()) {
                    fail("memo index " + std::to_string(idx) + " was never stored");
                }
                push(it->second);
                break;
            }
            default: {
                std::ostringstream os;
                os << "unsupported pickle opcode 0x" << std::hex << static_cast<int>(op);
                fail(os.str());
            }
        }
    }
}

ValuePtr Unpickler::persistent_load(const ValuePtr& pid) {
    // ('storage', torch.<Dtype>Storage | torch.storage.UntypedStorage, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::String ||
        pid->items[0]->s != "storage") {
        fail("persistent id is not ('storage', type, key, location, numel)");
    }
    const auto& type = pid->items[1];
    const auto& key = pid->items[2];
    const auto& location = pid->items[3];
    const int64_t numel = as_int(pid->items[4], "storage numel");
    if (type->kind != Kind::Global || key->kind != Kind::String || location->kind != Kind::String ||
        numel < 0) {
        fail("persistent id is not ('storage', type, key, location, numel)");
    }
    auto v = make(Kind::Storage);
    uint64_t item = 1;
    if (type->s != "torch.storage.UntypedStorage") {
        for (const auto& d : torch_dtypes()) {
            if (d.storage != nullptr && type->s == std::string("torch.") + d.storage) {
                v->storage_dtype = d.type;
                item = c10::elementSize(d.type);
            }
        }
        if (!v->storage_dtype) {
            fail("'" + type->s + "' is not a storage type");
        }
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), item, &nbytes)) {
        fail("storage '" + key->s + "' size overflows");
    }
    auto it = storages_.find(key->s);
    if (it == storages_.end()) {
        // The location (e.g. 'cuda:0') is ignored: everything loads on the CPU.
        it = storages_.emplace(key->s, std::make_pair(load_(key->s, nbytes), nbytes)).first;
    } else if (it->second.second != nbytes) {
        fail("storage '" + key->s + "' is referenced with two sizes (" + std::to_string(it->second.second) +
             " and " + std::to_string(nbytes) + " bytes)");
    }
    v->storage = it->second.first;
    return v;
}

ValuePtr Unpickler::rebuild_tensor(const std::vector<ValuePtr>& a, bool v3) {
    // v2: (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    // v3: (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
    const size_t need = v3 ? 7 : 6;
    if (a.size() != need && a.size() != need + 1) {
        fail(std::string("_rebuild_tensor_") + (v3 ? "v3" : "v2") + " called with " +
             std::to_string(a.size()) + " arguments");
    }
    if (a[0]->kind != Kind::Storage) {
        fail("tensor storage is a " + std::string(kind_name(a[0]->kind)));
    }
    at::ScalarType dtype;
    if (v3) {
        const auto& g = a[6];
        std::optional<at::ScalarType> t;
        for (const auto& d : torch_dtypes()) {
            if (g->kind == Kind::Global && g->s == std::string("torch.") + d.name) {
                t = d.type;
            }
        }
        if (!t) {
            fail("_rebuild_tensor_v3 dtype is not a supported torch dtype");
        }
        dtype = *t;
    } else {
        if (!a[0]->storage_dtype) {
            fail("_rebuild_tensor_v2 with an untyped storage");
        }
        dtype = *a[0]->storage_dtype;
    }
    const int64_t offset = as_int(a[1], "storage offset");
    const auto sizes = as_int_tuple(a[2], "tensor size");
    const auto strides = as_int_tuple(a[3], "tensor stride");
    if (offset < 0 || sizes.size() != strides.size()) {
        fail("tensor size " + shape_string(sizes) + ", stride " + shape_string(strides) + ", offset " +
             std::to_string(offset) + " do not fit together");
    }
    const uint64_t item = c10::elementSize(dtype);
    const uint64_t storage_bytes = a[0]->storage.nbytes();
    // Highest element index the view touches; every product is overflow-checked.
    uint64_t numel = 1, last = static_cast<uint64_t>(offset);
    bool overflow = false;
    for (size_t d = 0; d < sizes.size(); ++d) {
        uint64_t span = 0;
        overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(sizes[d]), &numel);
        if (sizes[d] > 0) {
            overflow |= __builtin_mul_overflow(static_cast<uint64_t>(sizes[d] - 1),
                                               static_cast<uint64_t>(strides[d]), &span);
            overflow |= __builtin_add_overflow(last, span, &last);
        }
    }
    uint64_t last_byte = 0;
    overflow |= __builtin_mul_overflow(last + 1, item, &last_byte);
    if (overflow || numel > static_cast<uint64_t>(INT64_MAX) || (numel > 0 && last_byte > storage_bytes)) {
        fail("tensor view (size " + shape_string(sizes) + ", stride " + shape_string(strides) + ", offset " +
             std::to_string(offset) + ") reaches past its storage of " + std::to_string(storage_bytes) +
             " bytes");
    }
    auto v = make(Kind::Tensor);
    v->tensor = at::empty({0}, at::TensorOptions().dtype(dtype).device(at::kCPU));
    if (numel > 0) {
        v->tensor.set_(a[0]->storage, offset, sizes, strides);
    } else {
        v->tensor = at::empty_strided(sizes, strides, v->tensor.options());
    }
    return v;
}

ValuePtr Unpickler::reduce(const ValuePtr& callable, const ValuePtr& args) {
    if (callable->kind != Kind::Global) {
        fail(std::string("REDUCE calls a ") + kind_name(callable->kind));
    }
    if (args->kind != Kind::Tuple) {
        fail("REDUCE arguments are not a tuple");
    }
    const auto& a = args->items;
    const std::string& g = callable->s;
    if (g == "collections.OrderedDict") {
        if (!a.empty()) {
            fail("OrderedDict(...) with arguments is not supported");
        }
        return make(Kind::Dict);
    }
    if (g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor_v3") {
        return rebuild_tensor(a, g.back() == '3');
    }
    if (g == "torch._utils._rebuild_parameter") {  // (data, requires_grad, backward_hooks)
        if (a.size() != 3 || a[0]->kind != Kind::Tensor) {
            fail("_rebuild_parameter expects (tensor, requires_grad, hooks)");
        }
        return a[0];
    }
    fail("'" + g + "' cannot be called");
}

}  // namespace

UnpickledTensors unpickle_tensors(const uint8_t* data, size_t size, const std::string& source,
                                  const StorageLoader& load_storage) {
    Unpickler vm(data, size, source, load_storage);
    const ValuePtr top = vm.run();
    UnpickledTensors out;
    if (top->kind == Kind::Tensor) {
        out.tensor = top->tensor;
        return out;
    }
    if (top->kind != Kind::Dict) {
        throw ModelError(source + ": the file holds a " + kind_name(top->kind) +
                         ", expected a tensor or a dict of tensors");
    }
    out.is_dict = true;
    for (const auto& [k, v] : top->dict) {
        if (k->kind != Kind::String) {
            throw ModelError(source + ": dict key is a " + std::string(kind_name(k->kind)) +
                             ", expected str");
        }
        if (v->kind != Kind::Tensor) {
            throw ModelError(source + ": entry '" + k->s + "' is a " + kind_name(v->kind) +
                             ", not a tensor (only flat state dicts of tensors are supported)");
        }
        out.items.emplace_back(k->s, v->tensor);
    }
    return out;
}

}  // namespace flashvsr::models
