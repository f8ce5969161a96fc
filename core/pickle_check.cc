#include "core/pickle_check.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <vector>

namespace acs {
namespace {

constexpr size_t kMaxDepth = 1000;
constexpr size_t kMaxDims = 64;

// What the checker knows of a value on the unpickler's stack.
enum class Kind { kInt, kStr, kTuple, kList, kDict, kGlobal, kScalarType, kTensor, kOther };

// The globals LibTorch's unpickler resolves to a function REDUCE or BUILD applies.
enum class Global { kRebuildTensor, kOrderedDict, kComplex, kTypedList, kRestoreTypeTag, kIntList, kDevice, kClass };

struct Value;
using Ref = std::shared_ptr<Value>;

struct Value {
  Kind kind = Kind::kOther;
  int64_t number = 0;      // kInt: the value; kScalarType: the element size
  std::string text;        // kStr
  std::vector<Ref> items;  // kTuple
  Global global = Global::kClass;
  int64_t numel = 0;     // kTensor: elements of its storage
  int64_t itemsize = 0;  // kTensor: bytes per element
  size_t depth = 1;      // nesting of containers, tuples and objects
  bool sealed = false;   // kList, kDict: inside another value, so no longer changed
};

Ref Make(Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

// Element sizes of the storage types LibTorch's unpickler knows ("torch.FloatStorage").
const std::map<std::string, int64_t>& StorageTypes() {
  static const std::map<std::string, int64_t> types = {
      {"ByteStorage", 1},   {"CharStorage", 1},          {"ShortStorage", 2},         {"IntStorage", 4},
      {"LongStorage", 8},   {"HalfStorage", 2},          {"FloatStorage", 4},         {"DoubleStorage", 8},
      {"BoolStorage", 1},   {"BFloat16Storage", 2},      {"ComplexHalfStorage", 4},   {"ComplexFloatStorage", 8},
      {"ComplexDoubleStorage", 16}, {"QInt8Storage", 1}, {"QUInt8Storage", 1},        {"QInt32Storage", 4},
      {"QUInt4x2Storage", 1}, {"QUInt2x4Storage", 1}};
  return types;
}

bool IsQScheme(const std::string& name) {
  return name == "per_tensor_affine" || name == "per_channel_affine" || name == "per_tensor_symmetric" ||
         name == "per_channel_symmetric" || name == "per_channel_affine_float_qparams";
}

class Checker {
 public:
  Checker(std::string_view pickle, const std::string& name, const StorageRecordSize& record_size)
      : p_(pickle), name_(name), record_size_(record_size) {}

  Status Run() {
    uint8_t op = 0;
    if (!Byte(&op) || op != 0x80 || !Byte(&op) || op != 2) return Bad("not a pickle of protocol 2");
    while (true) {
      at_ = pos_;
      if (!Byte(&op)) return Bad("no STOP opcode");
      if (op == '.') {
        if (stack_.size() != 1) return Bad("STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return Status::Ok();
      }
      ACS_RETURN_IF_ERROR(Step(op));
    }
  }

 private:
  Status Bad(const std::string& why) const {
    return Status::DataLoss(name_ + ": " + why + " at byte " + std::to_string(at_));
  }

  bool Byte(uint8_t* out) {
    if (pos_ >= p_.size()) return false;
    *out = static_cast<uint8_t>(p_[pos_++]);
    return true;
  }
  // n bytes, little-endian.
  bool Le(size_t n, uint64_t* out) {
    if (p_.size() - pos_ < n) return false;
    *out = 0;
    for (size_t i = 0; i < n; ++i) *out |= uint64_t{static_cast<uint8_t>(p_[pos_ + i])} << (8 * i);
    pos_ += n;
    return true;
  }
  bool Line(std::string* out) {
    const size_t end = p_.find('\n', pos_);
    if (end == std::string_view::npos) return false;
    out->assign(p_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return true;
  }

  Status Push(Ref v) {
    if (v->depth > kMaxDepth) return Bad("values nested deeper than " + std::to_string(kMaxDepth));
    stack_.push_back(std::move(v));
    return Status::Ok();
  }
  // The values from the last mark up, removed with the mark.
  StatusOr<std::vector<Ref>> PopMark() {
    if (marks_.empty()) return Bad("no mark");
    const size_t start = marks_.back();
    marks_.pop_back();
    if (start > stack_.size()) return Bad("the stack is below its mark");
    std::vector<Ref> items(stack_.begin() + static_cast<std::ptrdiff_t>(start), stack_.end());
    stack_.resize(start);
    return items;
  }
  static size_t Seal(const std::vector<Ref>& items) {
    size_t depth = 0;
    for (const Ref& v : items) {
      v->sealed = true;
      depth = std::max(depth, v->depth);
    }
    return depth;
  }
  StatusOr<Ref> Open(const Ref& v, Kind kind) {
    if (v->kind != kind) return Bad(kind == Kind::kList ? "appends to a non-list" : "sets items of a non-dict");
    if (v->sealed) return Bad("changes a container already inside another value");
    return v;
  }
  Status Put(uint64_t id) {
    if (stack_.empty()) return Bad("memoizes from an empty stack");
    if (id >= p_.size()) return Bad("memo id " + std::to_string(id) + " past the pickle's size");
    if (id >= memo_.size()) memo_.resize(id + 1);
    memo_[id] = stack_.back();
    return Status::Ok();
  }
  Status Get(uint64_t id) {
    if (id >= memo_.size() || memo_[id] == nullptr) return Bad("memo id " + std::to_string(id) + " was never set");
    return Push(memo_[id]);
  }
  Status Tuple(std::vector<Ref> items) {
    Ref t = Make(Kind::kTuple);
    t->depth = Seal(items) + 1;
    t->items = std::move(items);
    return Push(std::move(t));
  }
  Status TupleOf(size_t n) {
    if (stack_.size() < n) return Bad("a tuple of more values than the stack holds");
    std::vector<Ref> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return Tuple(std::move(items));
  }

  Status Step(uint8_t op) {
    uint64_t n = 0;
    switch (op) {
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return Status::Ok();
      case ']':  // EMPTY_LIST
        return Push(Make(Kind::kList));
      case '}':  // EMPTY_DICT
        return Push(Make(Kind::kDict));
      case ')':  // EMPTY_TUPLE
        return Tuple({});
      case 'N':   // NONE
      case 0x88:  // NEWTRUE
      case 0x89:  // NEWFALSE
        return Push(Make(Kind::kOther));
      case 'G':  // BINFLOAT
        if (!Le(8, &n)) return Bad("truncated float");
        return Push(Make(Kind::kOther));
      case 'K':  // BININT1
      case 'M':  // BININT2
      case 'J': {  // BININT
        const size_t bytes = op == 'K' ? 1 : op == 'M' ? 2 : 4;
        if (!Le(bytes, &n)) return Bad("truncated integer");
        Ref v = Make(Kind::kInt);
        v->number = bytes == 4 ? static_cast<int32_t>(n) : static_cast<int64_t>(n);
        return Push(std::move(v));
      }
      case 0x8a: {  // LONG1, of 8 bytes only
        uint64_t length = 0;
        if (!Le(1, &length) || length != 8 || !Le(8, &n)) return Bad("a long integer other than 8 bytes");
        Ref v = Make(Kind::kInt);
        v->number = static_cast<int64_t>(n);
        return Push(std::move(v));
      }
      case 'X': {  // BINUNICODE
        if (!Le(4, &n) || n > p_.size() - pos_) return Bad("a string past the pickle's end");
        Ref v = Make(Kind::kStr);
        v->text.assign(p_.substr(pos_, n));
        pos_ += n;
        return Push(std::move(v));
      }
      case 'q':  // BINPUT
      case 'r':  // LONG_BINPUT
        if (!Le(op == 'q' ? 1 : 4, &n)) return Bad("truncated memo id");
        return Put(n);
      case 'h':  // BINGET
      case 'j':  // LONG_BINGET
        if (!Le(op == 'h' ? 1 : 4, &n)) return Bad("truncated memo id");
        return Get(n);
      case 't': {  // TUPLE
        ACS_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
        return Tuple(std::move(items));
      }
      case 0x85:
      case 0x86:
      case 0x87:  // TUPLE1, TUPLE2, TUPLE3
        return TupleOf(op - 0x84);
      case 'l':    // LIST
      case 'd': {  // DICT
        ACS_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
        if (op == 'd' && items.size() % 2 != 0) return Bad("a dict of an odd number of values");
        Ref c = Make(op == 'l' ? Kind::kList : Kind::kDict);
        c->depth = Seal(items) + 1;
        return Push(std::move(c));
      }
      case 'e':    // APPENDS
      case 'u': {  // SETITEMS
        if (marks_.empty() || marks_.back() == 0 || marks_.back() > stack_.size()) {
          return Bad("no container below the mark");
        }
        ACS_ASSIGN_OR_RETURN(Ref c, Open(stack_[marks_.back() - 1], op == 'e' ? Kind::kList : Kind::kDict));
        ACS_ASSIGN_OR_RETURN(std::vector<Ref> items, PopMark());
        if (op == 'u' && items.size() % 2 != 0) return Bad("SETITEMS of an odd number of values");
        c->depth = std::max(c->depth, Seal(items) + 1);
        if (c->depth > kMaxDepth) return Bad("values nested deeper than " + std::to_string(kMaxDepth));
        return Status::Ok();
      }
      case 's': {  // SETITEM
        if (stack_.size() < 3) return Bad("SETITEM on fewer than 3 values");
        ACS_ASSIGN_OR_RETURN(Ref c, Open(stack_[stack_.size() - 3], Kind::kDict));
        std::vector<Ref> items(stack_.end() - 2, stack_.end());
        stack_.resize(stack_.size() - 2);
        c->depth = std::max(c->depth, Seal(items) + 1);
        if (c->depth > kMaxDepth) return Bad("values nested deeper than " + std::to_string(kMaxDepth));
        return Status::Ok();
      }
      case 'c':  // GLOBAL
        return ReadGlobal();
      case 0x81:  // NEWOBJ: drops its argument; BUILD or REDUCE applies the global
        if (stack_.empty()) return Bad("NEWOBJ on an empty stack");
        stack_.pop_back();
        return Status::Ok();
      case 'b':  // BUILD
      case 'R':  // REDUCE
        return Apply();
      case 'Q':  // BINPERSID
        return PersistentStorage();
      default:
        return Bad("opcode " + std::to_string(op) + " that LibTorch's unpickler does not read");
    }
  }

  // Mirrors LibTorch's readGlobal: storage types push their element type, the rest a global
  // that BUILD or REDUCE applies; names it rejects, or that build tensors unchecked, are refused.
  Status ReadGlobal() {
    std::string module, name;
    if (!Line(&module) || !Line(&name)) return Bad("truncated GLOBAL");
    auto global = [&](Global g) {
      Ref v = Make(Kind::kGlobal);
      v->global = g;
      return Push(std::move(v));
    };
    if (module == "torch") {
      auto it = StorageTypes().find(name);
      if (it != StorageTypes().end()) {
        Ref v = Make(Kind::kScalarType);
        v->number = it->second;
        return Push(std::move(v));
      }
      if (IsQScheme(name)) return Push(Make(Kind::kInt));
      if (name == "device") return global(Global::kDevice);
    } else if (module == "torch._utils") {
      if (name == "_rebuild_tensor_v2" || name == "_rebuild_qtensor") return global(Global::kRebuildTensor);
    } else if (module == "torch.jit._pickle") {
      if (name == "restore_type_tag") return global(Global::kRestoreTypeTag);
      if (name == "build_intlist" || name == "build_tensorlist" || name == "build_doublelist" ||
          name == "build_boollist") {
        return global(Global::kTypedList);
      }
    } else if (module == "collections") {
      if (name == "OrderedDict") return global(Global::kOrderedDict);
    } else if (module == "builtins") {
      if (name == "complex") return global(Global::kComplex);
    } else if (module == "__main__") {
      if (name == "IntList") return global(Global::kIntList);
    } else if (module.compare(0, 5, "torch") != 0) {
      return global(Global::kClass);  // a class of the archive's code
    }
    return Bad("global " + module + "." + name + " is not accepted");
  }

  // BUILD or REDUCE: the global below the top applied to the top.
  Status Apply() {
    if (stack_.size() < 2 || stack_[stack_.size() - 2]->kind != Kind::kGlobal) {
      return Bad("REDUCE or BUILD without a global");
    }
    const Global g = stack_[stack_.size() - 2]->global;
    Ref arg = stack_.back();
    stack_.resize(stack_.size() - 2);
    Seal({arg});
    const std::vector<Ref>& items = arg->items;
    auto item = [&](size_t i, Kind kind) {
      return arg->kind == Kind::kTuple && items.size() > i && items[i]->kind == kind;
    };
    switch (g) {
      case Global::kRebuildTensor:
        return RebuildTensor(*arg);
      case Global::kTypedList:
        if (!item(0, Kind::kList)) return Bad("a typed list of no list");
        return Push(items[0]);
      case Global::kRestoreTypeTag:
        if (!item(1, Kind::kStr)) return Bad("a type tag without a type");
        return Push(items[0]);
      case Global::kIntList:
        if (arg->kind != Kind::kList) return Bad("an int list of no list");
        return Push(arg);
      case Global::kComplex:
        if (arg->kind != Kind::kTuple || items.size() != 2) return Bad("a complex number of other than 2 values");
        return Push(Make(Kind::kOther));
      case Global::kDevice:
        if (!item(0, Kind::kStr)) return Bad("a device without a name");
        return Push(Make(Kind::kOther));
      case Global::kOrderedDict:
        return Push(Make(Kind::kOther));
      case Global::kClass: {
        Ref object = Make(Kind::kOther);
        object->depth = arg->depth + 1;
        return Push(std::move(object));
      }
    }
    return Bad("unknown global");
  }

  // BINPERSID ("storage", element type, key, device, elements): the record's data.
  Status PersistentStorage() {
    if (stack_.empty()) return Bad("BINPERSID on an empty stack");
    Ref id = stack_.back();
    stack_.pop_back();
    Seal({id});
    const std::vector<Ref>& items = id->items;
    if (id->kind != Kind::kTuple || items.size() < 5 || items[0]->kind != Kind::kStr || items[0]->text != "storage" ||
        items[1]->kind != Kind::kScalarType || items[2]->kind != Kind::kStr || items[3]->kind != Kind::kStr ||
        items[4]->kind != Kind::kInt || items[4]->number < 0) {
      return Bad("a persistent id other than (\"storage\", type, key, device, elements)");
    }
    const std::string& key = items[2]->text;
    if (!keys_.insert(key).second) return Bad("storage '" + key + "' read twice");
    const int64_t numel = items[4]->number, itemsize = items[1]->number;
    if (numel > 0) {
      const std::optional<uint64_t> size = record_size_(key);
      if (!size) return Bad("storage '" + key + "' has no record");
      if (static_cast<uint64_t>(numel) > *size / static_cast<uint64_t>(itemsize)) {
        return Bad("storage '" + key + "' of " + std::to_string(numel) + " elements of " + std::to_string(itemsize) +
                   " bytes is larger than its record (" + std::to_string(*size) + " bytes)");
      }
    }
    Ref t = Make(Kind::kTensor);
    t->numel = numel;
    t->itemsize = itemsize;
    return Push(std::move(t));
  }

  // _rebuild_tensor_v2 / _rebuild_qtensor (storage, offset, sizes, strides, ...): LibTorch
  // sets the view on the storage without checking it.
  Status RebuildTensor(const Value& arg) {
    const std::vector<Ref>& items = arg.items;
    if (arg.kind != Kind::kTuple || items.size() < 4 || items[0]->kind != Kind::kTensor ||
        items[1]->kind != Kind::kInt || items[2]->kind != Kind::kTuple || items[3]->kind != Kind::kTuple ||
        items[2]->items.size() != items[3]->items.size() || items[2]->items.size() > kMaxDims) {
      return Bad("a tensor other than (storage, offset, sizes, strides, ...)");
    }
    const int64_t numel = items[0]->numel, offset = items[1]->number;
    if (offset < 0 || offset > numel) return Bad("a tensor offset outside its storage");
    int64_t last = offset, elements = 1;
    bool empty = false;
    for (size_t i = 0; i < items[2]->items.size(); ++i) {
      const Value& size = *items[2]->items[i];
      const Value& stride = *items[3]->items[i];
      if (size.kind != Kind::kInt || stride.kind != Kind::kInt || size.number < 0 || stride.number < 0) {
        return Bad("a tensor size or stride that is not a non-negative integer");
      }
      int64_t reach = 0;
      if (__builtin_mul_overflow(size.number, elements, &elements) ||
          (size.number > 0 && (__builtin_mul_overflow(size.number - 1, stride.number, &reach) ||
                               __builtin_add_overflow(last, reach, &last)))) {
        return Bad("a tensor whose sizes overflow");
      }
      empty = empty || size.number == 0;
    }
    if (!empty && last >= numel) return Bad("a tensor view past the end of its storage");
    Ref t = Make(Kind::kTensor);
    t->numel = numel;
    t->itemsize = items[0]->itemsize;
    return Push(std::move(t));
  }

  std::string_view p_;
  const std::string& name_;
  const StorageRecordSize& record_size_;
  size_t pos_ = 0;
  size_t at_ = 0;  // where the current opcode starts
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::vector<Ref> memo_;
  std::set<std::string> keys_;
};

}  // namespace

Status CheckPickle(std::string_view pickle, const std::string& name, const StorageRecordSize& record_size) {
  return Checker(pickle, name, record_size).Run();
}

}  // namespace acs
