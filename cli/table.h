// Plain-text tables for the command line: columns sized to their widest cell.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace acs::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void AddSeparator() { rows_.push_back({}); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;  // an empty row prints a separator line
};

// 1234567 -> "1.23M"; 1234 -> "1.23K".
std::string HumanCount(double value);
// 0.5 -> "50.0%".
std::string Percent(double share, int decimals = 1);
// Bytes of a file as "1.2 MiB"; "-" when missing.
std::string FileSize(const std::string& path);

}  // namespace acs::cli
