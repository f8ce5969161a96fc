#include "core/source_check.h"

#include <cctype>
#include <set>
#include <vector>

namespace acs {
namespace {

constexpr size_t kMaxBracketDepth = 256;
constexpr size_t kMaxBlockDepth = 100;
constexpr size_t kMaxExpressionDepth = 1000;

bool IsWord(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool IsOpen(char c) { return c == '(' || c == '[' || c == '{'; }
bool IsClose(char c) { return c == ')' || c == ']' || c == '}'; }

// One pass over the code, a logical line (statement) at a time.
class Scan {
 public:
  Scan(std::string_view code, const std::string& name) : code_(code), name_(name) {}

  Status Run() {
    while (i_ < code_.size()) {
      if (line_start_) {
        ACS_RETURN_IF_ERROR(StartLine());
        continue;
      }
      ACS_RETURN_IF_ERROR(Token());
    }
    return EndStatement();
  }

 private:
  // A class whose body is being read.
  struct Class {
    size_t column = 0;
    std::string base;   // e.g. "Module", "Enum", "NamedTuple"; empty for none
    size_t body = std::string::npos;  // the body's indentation, once seen
  };

  Status Bad(const std::string& why) const { return Status::DataLoss(name_ + ": " + why); }

  // Indentation (as LibTorch's lexer counts it: every blank character is one): the blocks
  // and classes it closes or opens.
  Status StartLine() {
    size_t column = 0;
    for (; i_ < code_.size() && code_[i_] != '\n' && std::isspace(static_cast<unsigned char>(code_[i_])); ++i_) {
      ++column;
    }
    line_start_ = false;
    if (i_ >= code_.size() || code_[i_] == '\n' || code_[i_] == '#') return Status::Ok();
    if (column > blocks_.back()) blocks_.push_back(column);
    while (column < blocks_.back()) blocks_.pop_back();
    if (blocks_.size() > kMaxBlockDepth + 1) return Bad("blocks nested deeper than " + std::to_string(kMaxBlockDepth));
    while (!classes_.empty() && column <= classes_.back().column) classes_.pop_back();
    if (!classes_.empty() && classes_.back().body == std::string::npos) classes_.back().body = column;
    column_ = column;
    return Status::Ok();
  }

  // The class-body rules, then a fresh statement.
  Status EndStatement() {
    const bool in_class = tokens_ > 0 && !classes_.empty() && column_ == classes_.back().body;
    if (tokens_ > 0 && first_word_ == "class") {
      classes_.push_back({column_, inner_word_});
    } else if (in_class && first_word_ != "def") {
      static const std::set<std::string> kSpecial = {"__parameters__", "__buffers__", "__annotations__",
                                                     "__forward_pre_hooks__", "__forward_hooks__"};
      const std::string& base = classes_.back().base;
      if (base == "Enum" && !assigned_) return Bad("an Enum member without a value");
      if (base == "NamedTuple" && !annotated_) return Bad("a NamedTuple field without a type");
      if (base != "Enum" && assigned_ && !annotated_ && !kSpecial.count(first_word_)) {
        return Bad("a class constant without a type ('" + first_word_ + " = ...')");
      }
    }
    levels_.assign(1, 0);
    chain_ = tokens_ = 0;
    first_word_.clear();
    inner_word_.clear();
    annotated_ = assigned_ = after_bracket_ = seen_bracket_ = false;
    return Status::Ok();
  }

  Status Token() {
    const char c = code_[i_];
    const bool top = levels_.size() == 1;
    size_t ops = 0;
    if (c == '\n' || c == ';') {
      ++i_;
      if (!top) return Status::Ok();
      line_start_ = c == '\n';
      return EndStatement();
    }
    if (c == '\\' && i_ + 1 < code_.size() && code_[i_ + 1] == '\n') {  // a continued line
      i_ += 2;
      return Status::Ok();
    }
    if (c == '#') {
      while (i_ < code_.size() && code_[i_] != '\n') ++i_;
      return Status::Ok();
    }
    if (c == '\'' || c == '"') {
      const std::string close(code_.compare(i_, 3, std::string(3, c)) == 0 ? 3 : 1, c);
      for (i_ += close.size(); i_ < code_.size() && code_.compare(i_, close.size(), close) != 0; ++i_) {
        if (code_[i_] == '\\') ++i_;
      }
      i_ += close.size();
    } else if (IsWord(c)) {
      static const std::set<std::string_view> kOperators = {"and", "or", "not", "if", "else", "is", "in"};
      const size_t start = i_;
      const bool number = std::isdigit(static_cast<unsigned char>(c));
      while (i_ < code_.size() && (IsWord(code_[i_]) || (number && code_[i_] == '.'))) ++i_;
      const std::string_view word = code_.substr(start, i_ - start);
      ops = kOperators.count(word);
      if (tokens_ == 0) first_word_ = word;
      if (after_bracket_) inner_word_ = word;
    } else if (c == ',' || c == ':') {
      if (top && c == ':' && !assigned_) annotated_ = true;
      chain_ -= levels_.back();  // what follows is a sibling, not nested
      levels_.back() = 0;
      ++i_;
    } else if (IsOpen(c)) {
      ops = 1;
      levels_.push_back(0);
      if (levels_.size() > kMaxBracketDepth + 1) {
        return Bad("brackets nested deeper than " + std::to_string(kMaxBracketDepth));
      }
      ++i_;
    } else if (IsClose(c)) {
      if (levels_.size() > 1) {
        chain_ -= levels_.back();
        levels_.pop_back();
      }
      ++i_;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i_;
      return Status::Ok();
    } else {
      if (top && c == '=' && i_ + 1 < code_.size() && code_[i_ + 1] != '=' &&
          (i_ == 0 || std::string_view("=!<>").find(code_[i_ - 1]) == std::string_view::npos)) {
        assigned_ = true;
      }
      ops = 1;
      ++i_;
    }
    after_bracket_ = IsOpen(c) && top && tokens_ > 0 && inner_word_.empty() && !seen_bracket_;
    seen_bracket_ = seen_bracket_ || IsOpen(c);
    ++tokens_;
    if (ops > 0) {
      levels_[levels_.size() - (IsOpen(c) ? 2 : 1)] += ops;  // a bracket counts where it opens
      chain_ += ops;
      if (chain_ > kMaxExpressionDepth) {
        return Bad("an expression nested deeper than " + std::to_string(kMaxExpressionDepth));
      }
    }
    return Status::Ok();
  }

  std::string_view code_;
  const std::string& name_;
  size_t i_ = 0;
  bool line_start_ = true;
  std::vector<size_t> blocks_{0};  // indentation of the open blocks
  std::vector<Class> classes_;
  // The current statement.
  size_t column_ = 0;
  std::vector<size_t> levels_{0};  // operators in the current item of each open bracket
  size_t chain_ = 0;               // their sum: what the expression's depth can reach
  size_t tokens_ = 0;
  std::string first_word_;  // if the statement starts with a word
  std::string inner_word_;  // the word right after its first bracket: a class's base
  bool after_bracket_ = false, seen_bracket_ = false;
  bool annotated_ = false, assigned_ = false;  // a ':' before any '=', an '=', outside brackets
};

}  // namespace

Status CheckTorchScriptSource(std::string_view code, const std::string& name) { return Scan(code, name).Run(); }

}  // namespace acs
