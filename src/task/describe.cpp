// How reports name a coroutine frame: its function without return type,
// namespaces and template arguments, and where it is.
#include "task/describe.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace corio::detail {

namespace {

// The index of the bracket that opens the one closing at `close`, or npos.
std::size_t matching_open(const std::string& s, std::size_t close, char o, char c) {
  int depth = 0;
  for (std::size_t i = close + 1; i-- > 0;) {
    if (s[i] == c) ++depth;
    if (s[i] == o && --depth == 0) return i;
  }
  return std::string::npos;
}

bool ends_with(const std::string& s, std::string_view tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Erases every occurrence of `what`, or only its first `n` characters.
void erase_each(std::string& s, std::string_view what, std::size_t n = std::string::npos) {
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p))
    s.erase(p, std::min(n, what.size()));
}

// Compilers name a function with its return type, namespaces, qualifiers
// and template arguments. GCC: "corio::task<int> {anonymous}::parse(const
// std::string&) [with T = int]"; Clang: "corio::task<int> (anonymous
// namespace)::parse(const std::string &) [T = int]", and "auto f()::(anonymous
// class)::operator()() const" for a lambda. Both become "parse(const
// std::string&)". The parameter list is the last balanced "(...)"; the name
// starts after the last space outside brackets before it.
std::string function_without_return_type(std::string s) {
  if (!s.empty() && s.back() == ']') {  // template arguments
    const std::size_t open = matching_open(s, s.size() - 1, '[', ']');
    if (open != std::string::npos && open > 0 && s[open - 1] == ' ') s.resize(open - 1);
  }
  // Anonymous namespaces add nothing a reader needs.
  erase_each(s, "{anonymous}::");
  erase_each(s, "(anonymous namespace)::");
  for (bool more = true; more;) {
    more = false;
    for (const std::string_view q : {" const", " volatile", " noexcept", " &&", " &"})
      if (ends_with(s, q)) {
        s.resize(s.size() - q.size());
        more = true;
      }
  }
  // Clang writes "const std::string &", GCC "const std::string&": one way.
  erase_each(s, " &", 1);
  erase_each(s, " *", 1);
  if (s.empty() || s.back() != ')') return s;  // GCC's "main()::<lambda(int)>": no return type
  const std::size_t open = matching_open(s, s.size() - 1, '(', ')');
  if (open == std::string::npos) return s;
  int depth = 0;  // inside <...> or (...), counted from the right
  for (std::size_t i = open; i-- > 0;) {
    if (s[i] == '>' || s[i] == ')') ++depth;
    if (s[i] == '<' || s[i] == '(') --depth;
    if (s[i] == ' ' && depth == 0) return s.substr(i + 1);
  }
  return s;
}

bool identifier_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}

// The index just past the bracket that closes the one at `open`.
std::size_t past_closing(const std::string& s, std::size_t open, char o, char c) {
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    if (s[i] == o) ++depth;
    if (s[i] == c && --depth == 0) return i + 1;
  }
  return s.size();
}

// Chains name instantiations of templates and lambdas inside them, which
// GCC spells out in full (a lambda's type repeats its enclosing function's
// signature). Keep them readable: drop template argument lists, and write
// a parameter list longer than 60 characters as "(...)".
std::string compact_name(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '<' && i > 0 && identifier_char(s[i - 1]) && s.compare(i, 7, "<lambda") != 0) {
      i = past_closing(s, i, '<', '>');
      continue;
    }
    if (c == '(') {
      const std::size_t end = past_closing(s, i, '(', ')');
      if (end - i - 2 > 60) {
        out += "(...)";
        i = end;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

}  // namespace

std::string function_display_name(const char* full) {
  return compact_name(function_without_return_type(full));
}

std::string describe_frame(const code_site& where) {
  if (where.line() == 0) return "(unknown coroutine)";
  std::string s = function_display_name(where.function_name());
  s += " at ";
  s += where.file_name();
  s += ':';
  s += std::to_string(where.line());
  return s;
}

std::string describe_named(const char* name, const code_site& where) {
  std::string s;
  if (name != nullptr) {
    s += '\'';
    s += name;
    s += "' ";
  }
  return s + describe_frame(where);
}

}  // namespace corio::detail
