#include "cli/table.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

namespace acs::cli {

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  for (size_t i = 0; i < header_.size(); ++i) width[i] = header_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < width.size(); ++i) {
      std::string cell = i < cells.size() ? cells[i] : "";
      out << cell << std::string(width[i] - cell.size() + (i + 1 < width.size() ? 2 : 0), ' ');
    }
    out << "\n";
  };
  size_t total = 0;
  for (size_t w : width) total += w + 2;
  line(header_);
  out << std::string(total > 2 ? total - 2 : 0, '-') << "\n";
  for (const auto& row : rows_) {
    if (row.empty()) out << std::string(total > 2 ? total - 2 : 0, '-') << "\n";
    else line(row);
  }
}

std::string HumanCount(double value) {
  char buf[32];
  if (value >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", value / 1e9);
  else if (value >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", value / 1e6);
  else if (value >= 1e3) std::snprintf(buf, sizeof buf, "%.2fK", value / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

std::string Percent(double share, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, share * 100.0);
  return buf;
}

std::string FileSize(const std::string& path) {
  std::error_code ec;
  auto bytes = std::filesystem::file_size(path, ec);
  if (ec) return "-";
  char buf[32];
  if (bytes >= (1u << 20)) std::snprintf(buf, sizeof buf, "%.2f MiB", bytes / 1048576.0);
  else std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  return buf;
}

}  // namespace acs::cli
