// How reports and dumps name a coroutine's function, from the full names
// GCC and Clang give (std::source_location::function_name): the same short
// name from either compiler (Clang's "T &" spacing included).
#include <gtest/gtest.h>

#include <string>

#include "observe/observe.hpp"

using corio::detail::function_display_name;

namespace {

TEST(FunctionNames, GccNamesLoseReturnTypeAnonymousNamespaceAndTemplateArguments) {
  EXPECT_EQ(function_display_name(
                "corio::task<int> {anonymous}::parse(const std::string&) [with T = int]"),
            "parse(const std::string&)");
  EXPECT_EQ(function_display_name("corio::task<std::pair<int, long int> > app::load(int)"),
            "app::load(int)");
  EXPECT_EQ(function_display_name("corio::task<> app::server::handle(int) const"),
            "app::server::handle(int)");
  EXPECT_EQ(function_display_name("main()::<lambda(int)>"), "main()::<lambda(int)>");
  EXPECT_EQ(function_display_name(
                "corio::task<void> corio::serve(tcp_listener&, F) [with F = "
                "corio::serve_http<handler>(tcp_listener&, handler, http_limits)::<lambda(corio::"
                "tcp_stream)>]"),
            "corio::serve(tcp_listener&, F)");
}

TEST(FunctionNames, ClangNamesComeOutTheSame) {
  EXPECT_EQ(function_display_name(
                "corio::task<int> (anonymous namespace)::parse(const std::string &) [T = int]"),
            "parse(const std::string&)");
  EXPECT_EQ(function_display_name("corio::task<> (anonymous namespace)::sleeper()"), "sleeper()");
  EXPECT_EQ(
      function_display_name(
          "task corio::serve(tcp_listener &, F) [F = (lambda at src/observe/metrics.cpp:344:33)]"),
      "corio::serve(tcp_listener&, F)");
  // A lambda: the "(lambda at ...)" and "(anonymous class)" parts have spaces
  // of their own, which must not be taken for the one after the return type.
  EXPECT_EQ(function_display_name("auto f(int)::(anonymous class)::operator()() const"),
            "f(int)::(anonymous class)::operator()()");
  EXPECT_EQ(function_display_name(
                "auto run((lambda at t.cpp:35:10))::(anonymous class)::operator()(F &) const"),
            "run((lambda at t.cpp:35:10))::(anonymous class)::operator()(F&)");
}

// Template arguments inside the parameters go; a list still over 60
// characters becomes "(...)".
TEST(FunctionNames, LongParameterListsAndTemplateArgumentsAreShortened) {
  EXPECT_EQ(
      function_display_name("corio::task<void> ns::h(std::vector<int>, std::map<int, long int>)"),
      "ns::h(std::vector, std::map)");
  EXPECT_EQ(function_display_name("corio::task<void> ns::k(const very_long_type_name_number_one&, "
                                  "const very_long_type_name_number_two&)"),
            "ns::k(...)");
}

}  // namespace
