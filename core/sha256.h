// SHA-256 of a byte stream (OpenSSL), as the 64 lower-case hex digits that name blobs and
// artifacts.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace acs {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  void Update(std::string_view bytes);
  // The digest of everything updated so far; the object is spent after it.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);
// The digest of a file's bytes; empty when it cannot be read.
std::string Sha256OfFile(const std::string& path);

}  // namespace acs
