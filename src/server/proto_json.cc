// Protobuf message -> JSON in Triton's HTTP style. Written by hand (on reflection) because
// protobuf's JSON printer turns 64-bit integers into strings, while Triton's clients (and
// perf_analyzer) read dims, max_queue_delay_microseconds, etc. as numbers.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "server/model_config.h"

namespace kiln::server {
namespace {

namespace pb = google::protobuf;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_message(const pb::Message& msg, Writer* w);

void write_value(const pb::Message& msg, const pb::FieldDescriptor* f, int index, Writer* w) {
  const pb::Reflection* r = msg.GetReflection();
  const bool rep = index >= 0;
  switch (f->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT32:
      w->Int(rep ? r->GetRepeatedInt32(msg, f, index) : r->GetInt32(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_INT64:
      w->Int64(rep ? r->GetRepeatedInt64(msg, f, index) : r->GetInt64(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT32:
      w->Uint(rep ? r->GetRepeatedUInt32(msg, f, index) : r->GetUInt32(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      w->Uint64(rep ? r->GetRepeatedUInt64(msg, f, index) : r->GetUInt64(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      w->Double(rep ? r->GetRepeatedDouble(msg, f, index) : r->GetDouble(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
      w->Double(rep ? r->GetRepeatedFloat(msg, f, index) : r->GetFloat(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_BOOL:
      w->Bool(rep ? r->GetRepeatedBool(msg, f, index) : r->GetBool(msg, f));
      break;
    case pb::FieldDescriptor::CPPTYPE_ENUM: {
      const pb::EnumValueDescriptor* e =
          rep ? r->GetRepeatedEnum(msg, f, index) : r->GetEnum(msg, f);
      w->String(e->name().c_str());
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(msg, f, index, &scratch)
                                 : r->GetStringReference(msg, f, &scratch);
      w->String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
      break;
    }
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      write_message(rep ? r->GetRepeatedMessage(msg, f, index) : r->GetMessage(msg, f), w);
      break;
  }
}

void write_map(const pb::Message& msg, const pb::FieldDescriptor* f, Writer* w) {
  const pb::Reflection* r = msg.GetReflection();
  w->StartObject();
  for (int i = 0; i < r->FieldSize(msg, f); ++i) {
    const pb::Message& entry = r->GetRepeatedMessage(msg, f, i);
    const pb::Descriptor* d = entry.GetDescriptor();
    const pb::FieldDescriptor* key = d->FindFieldByName("key");
    const pb::FieldDescriptor* value = d->FindFieldByName("value");
    const pb::Reflection* er = entry.GetReflection();
    std::string k;
    switch (key->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_STRING:
        k = er->GetString(entry, key);
        break;
      case pb::FieldDescriptor::CPPTYPE_INT32:
        k = std::to_string(er->GetInt32(entry, key));
        break;
      case pb::FieldDescriptor::CPPTYPE_INT64:
        k = std::to_string(er->GetInt64(entry, key));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT32:
        k = std::to_string(er->GetUInt32(entry, key));
        break;
      case pb::FieldDescriptor::CPPTYPE_UINT64:
        k = std::to_string(er->GetUInt64(entry, key));
        break;
      default:
        k = er->GetBool(entry, key) ? "true" : "false";
    }
    w->Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    write_value(entry, value, -1, w);
  }
  w->EndObject();
}

void write_message(const pb::Message& msg, Writer* w) {
  const pb::Descriptor* d = msg.GetDescriptor();
  const pb::Reflection* r = msg.GetReflection();
  w->StartObject();
  for (int i = 0; i < d->field_count(); ++i) {
    const pb::FieldDescriptor* f = d->field(i);
    // Unset sub-messages and unset oneof members are left out, as protobuf's printer does.
    if (!f->is_repeated() &&
        (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE ||
         f->containing_oneof() != nullptr) &&
        !r->HasField(msg, f)) {
      continue;
    }
    w->Key(f->name().c_str());
    if (f->is_map()) {
      write_map(msg, f, w);
    } else if (f->is_repeated()) {
      w->StartArray();
      for (int j = 0; j < r->FieldSize(msg, f); ++j) write_value(msg, f, j, w);
      w->EndArray();
    } else {
      write_value(msg, f, -1, w);
    }
  }
  w->EndObject();
}

}  // namespace

std::string model_config_to_json(const google::protobuf::Message& config) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  write_message(config, &w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace kiln::server
