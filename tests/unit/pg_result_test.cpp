// pg::result and pg::row without a server: results are filled as the
// connection fills them (src/pg/wire.hpp), from DataRow bodies made here.
// A row of no result and a moved-from result read as empty, with clear
// errors, instead of through a null or stale pointer.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "corio/pg/param.hpp"
#include "corio/pg/result.hpp"
#include "pg/wire.hpp"

namespace pg = corio::pg;

namespace {

// A result of one int4 column "n" holding `values`, one row each.
pg::result int4_rows(std::initializer_list<std::int32_t> values) {
  pg::result r;
  pg::detail::start_result(
      r, std::make_shared<const pg::detail::columns>(pg::detail::columns{{"n", pg::oid::int4}}));
  for (const std::int32_t v : values) {
    // DataRow: the field count (int16), then each field's length (int32)
    // and bytes, big-endian.
    std::string body{'\0', '\1', '\0', '\0', '\0', '\4'};
    const auto u = static_cast<std::uint32_t>(v);
    for (int shift = 24; shift >= 0; shift -= 8)
      body.push_back(static_cast<char>((u >> shift) & 0xFF));
    pg::detail::append_row(r, body);
  }
  return r;
}

TEST(PgRow, ADefaultConstructedRowHasNoColumnsAndEveryReadThrows) {
  const pg::row r;
  EXPECT_EQ(r.size(), 0);
  EXPECT_THROW((void)r.get<std::int32_t>(0), std::out_of_range);
  EXPECT_THROW((void)r.get<std::optional<std::string>>("n"), std::out_of_range);
  EXPECT_THROW((void)r.is_null(0), std::out_of_range);
}

TEST(PgResult, AMovedFromResultIsEmpty) {
  pg::result a = int4_rows({5, 6});
  EXPECT_EQ(a.size(), 2U);
  EXPECT_EQ(a[1].get<std::int32_t>("n"), 6);

  pg::result b = std::move(a);
  EXPECT_EQ(b.size(), 2U);
  EXPECT_EQ(b[0].get<std::int32_t>(0), 5);
  EXPECT_EQ(a.size(), 0U);  // NOLINT(bugprone-use-after-move): what is tested
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.begin(), a.end());
  EXPECT_EQ(a.columns(), 0);
  EXPECT_EQ(a.affected(), 0U);
  EXPECT_THROW((void)a.at(0), std::out_of_range);
  EXPECT_THROW((void)a[0].get<std::int32_t>(0), std::out_of_range);

  pg::result c = int4_rows({7});
  c = std::move(b);
  EXPECT_EQ(c.size(), 2U);
  EXPECT_EQ(b.size(), 0U);  // NOLINT(bugprone-use-after-move): what is tested
  EXPECT_EQ(b.begin(), b.end());
  EXPECT_THROW((void)b[1].get<std::int32_t>(0), std::out_of_range);
}

}  // namespace
