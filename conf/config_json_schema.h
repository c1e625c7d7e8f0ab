#pragma once

#include <string>

// The JSON Schema (draft-07) of the configuration file, derived from the key table
// (conf/config_schema.h): one object per section, additionalProperties false at every level;
// types, ranges, enums, lists and the fields of entry lists as the loader checks them, and each
// key's meaning as its description. Checks a type cannot express (a path starting with '/', a
// URL, a CIDR) stay with the loader. `wsrelay --print-config-schema` prints it; the Helm chart's
// values.schema.json carries it as the schema of its `config` value (tests/helm/run.sh checks
// that the two agree).
namespace wsrelay {

// Pretty-printed, properties in table order, ending in a newline.
std::string configJsonSchema();

}  // namespace wsrelay
