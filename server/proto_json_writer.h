// A message as JSON straight from protobuf reflection, for large answers (the job list):
// the same JSON value as the gateway's MessageToJsonString with every primitive field and
// proto field names (every scalar and repeated field present, unset message fields left
// out, 64-bit integers as strings, enums by name, NaN and infinities as strings), written
// in one pass. protobuf's own writer first builds a tree of the whole message (its
// default-value writer): about half of a 1,000-job page's time. The text may differ
// (doubles are written shortest, escapes), not the value.
// `keep`, when not null, names the fields written as dotted paths from the root
// ("jobs.request.agent"): a field is written when a path names it (all of it) or runs
// through it (only the fields of those paths below it). Header-only.
#pragma once

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <charconv>
#include <cmath>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/status.h"

namespace acs::server {

using JsonFieldPaths = std::set<std::string, std::less<>>;

namespace proto_json_internal {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

inline void AppendQuoted(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kHex[u >> 4]);
      out->push_back(kHex[u & 15]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

template <typename T>
void AppendNumber(T v, std::string* out) {
  if constexpr (std::is_floating_point_v<T>) {
    if (std::isnan(v)) return out->append("\"NaN\""), void();
    if (std::isinf(v)) return out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\""), void();
  }
  char buf[32];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

// Whether the field at `path` is written: `all` (an ancestor was named whole), or a path
// of `keep` is `path` or runs through it (sets `*whole` when it is `path`).
inline bool Kept(const JsonFieldPaths& keep, const std::string& path, bool* whole) {
  const auto it = keep.lower_bound(path);
  if (it == keep.end() || it->compare(0, path.size(), path) != 0) return false;
  *whole = it->size() == path.size();
  return *whole || (*it)[path.size()] == '.';
}

class Writer {
 public:
  Writer(const JsonFieldPaths* keep, std::string* out) : keep_(keep), out_(out) {}

  // `all`: every field of `m` is written.
  Status Object(const Message& m, std::string* path, bool all) {
    const Reflection& r = *m.GetReflection();
    const google::protobuf::Descriptor& d = *m.GetDescriptor();
    if (d.full_name().rfind("google.protobuf.", 0) == 0) {
      return Status::InvalidArgument("no JSON writer for " + d.full_name());
    }
    out_->push_back('{');
    bool first = true;
    const size_t parent = path->size();
    for (int i = 0; i < d.field_count(); ++i) {
      const FieldDescriptor* f = d.field(i);
      if (f->is_map()) return Status::InvalidArgument("no JSON writer for the map " + f->full_name());
      if (!f->is_repeated() && f->has_presence() && !r.HasField(m, f)) continue;
      bool whole = all;
      if (!all && keep_ != nullptr) {
        if (parent > 0) path->push_back('.');
        path->append(f->name());
        const bool kept = Kept(*keep_, *path, &whole);
        if (!kept) {
          path->resize(parent);
          continue;
        }
      } else {
        whole = true;
      }
      if (!first) out_->push_back(',');
      first = false;
      AppendQuoted(f->name(), out_);
      out_->push_back(':');
      if (f->is_repeated()) {
        out_->push_back('[');
        for (int k = 0; k < r.FieldSize(m, f); ++k) {
          if (k > 0) out_->push_back(',');
          ACS_RETURN_IF_ERROR(Value(m, f, k, path, whole));
        }
        out_->push_back(']');
      } else {
        ACS_RETURN_IF_ERROR(Value(m, f, -1, path, whole));
      }
      path->resize(parent);
    }
    out_->push_back('}');
    return Status::Ok();
  }

 private:
  // The value of `f` in `m` (its element `index` when repeated, -1 otherwise).
  Status Value(const Message& m, const FieldDescriptor* f, int index, std::string* path, bool all) {
    const Reflection& r = *m.GetReflection();
    const bool rep = index >= 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        AppendNumber(rep ? r.GetRepeatedInt32(m, f, index) : r.GetInt32(m, f), out_);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        AppendNumber(rep ? r.GetRepeatedUInt32(m, f, index) : r.GetUInt32(m, f), out_);
        break;
      case FieldDescriptor::CPPTYPE_INT64:  // 64-bit integers as strings
      case FieldDescriptor::CPPTYPE_UINT64:
        out_->push_back('"');
        if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
          AppendNumber(rep ? r.GetRepeatedInt64(m, f, index) : r.GetInt64(m, f), out_);
        } else {
          AppendNumber(rep ? r.GetRepeatedUInt64(m, f, index) : r.GetUInt64(m, f), out_);
        }
        out_->push_back('"');
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendNumber(rep ? r.GetRepeatedDouble(m, f, index) : r.GetDouble(m, f), out_);
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendNumber(rep ? r.GetRepeatedFloat(m, f, index) : r.GetFloat(m, f), out_);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_->append((rep ? r.GetRepeatedBool(m, f, index) : r.GetBool(m, f)) ? "true" : "false");
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        const int number = rep ? r.GetRepeatedEnumValue(m, f, index) : r.GetEnumValue(m, f);
        const google::protobuf::EnumValueDescriptor* e = f->enum_type()->FindValueByNumber(number);
        if (e != nullptr) {
          AppendQuoted(e->name(), out_);
        } else {
          AppendNumber(number, out_);
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_STRING:
        if (f->type() == FieldDescriptor::TYPE_BYTES) {
          return Status::InvalidArgument("no JSON writer for the bytes field " + f->full_name());
        }
        AppendQuoted(rep ? r.GetRepeatedStringReference(m, f, index, &scratch_) : r.GetStringReference(m, f, &scratch_),
                     out_);
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        return Object(rep ? r.GetRepeatedMessage(m, f, index) : r.GetMessage(m, f), path, all);
    }
    return Status::Ok();
  }

  const JsonFieldPaths* keep_;
  std::string* out_;
  std::string scratch_;
};

}  // namespace proto_json_internal

// Appends `message` as JSON to `*out`, only the fields `keep` names when it is not null.
// InvalidArgument for a message with a map, bytes or well-known-type field.
inline Status AppendProtoJson(const google::protobuf::Message& message, const JsonFieldPaths* keep, std::string* out) {
  std::string path;
  return proto_json_internal::Writer(keep, out).Object(message, &path, keep == nullptr);
}

}  // namespace acs::server
