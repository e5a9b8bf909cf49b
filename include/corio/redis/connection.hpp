// redis::connection: one connection to a Redis server, shared by many
// tasks, every command of a loop tick sent in one write.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "corio/flow/async_generator.hpp"
#include "corio/loop/detail/loop_core.hpp"
#include "corio/pool/pool.hpp"
#include "corio/redis/resp.hpp"
#include "corio/task/task.hpp"

namespace corio::redis {

/// Where and how to connect.
struct connection_options {
  std::string host = "127.0.0.1";  ///< A host name or numeric address (resolved when connecting).
  std::uint16_t port = 6379;       ///< The TCP port.
  /// A Unix socket path; when set, used instead of host and port.
  std::string unix_socket;
  /// ACL user (Redis 6+) and password: AUTH, or HELLO's AUTH.
  std::string username;
  std::string password;  ///< The password (empty: no AUTH); see username.
  /// SELECT this database after connecting (0: the default one).
  int database = 0;
  /// CLIENT SETNAME (shows in CLIENT LIST).
  std::string client_name;
  /// Speak RESP3 (HELLO 3), falling back to RESP2 when the server does not
  /// know HELLO (before Redis 6).
  bool resp3 = true;
  /// The longest connect() (connection and handshake) may take; then timeout_error.
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
  /// After the connection was lost (the server restarted), the next command
  /// connects again instead of failing.
  bool reconnect = false;
  resp_limits limits;  ///< Bounds on what the server may send (see resp_limits).
};

/// SET's options: an expiry (PX, in milliseconds; 0: none, or keep the
/// old one with `keep_ttl`), and set only if the key does not exist (NX)
/// or only if it does (XX).
struct set_options {
  std::chrono::milliseconds expire{0};  ///< PX: the expiry; 0: none (then see keep_ttl).
  bool keep_ttl = false;                ///< KEEPTTL: keep the key's old expiry (without `expire`).
  bool only_if_absent = false;          ///< NX (not with only_if_present)
  bool only_if_present = false;         ///< XX (not with only_if_absent)
};

/// What a connection did.
struct connection_stats {
  std::uint64_t commands = 0;         ///< commands sent
  std::uint64_t writes = 0;           ///< write system calls (several commands each)
  std::uint64_t reads = 0;            ///< read system calls
  std::uint64_t dropped_replies = 0;  ///< replies of cancelled commands, read and dropped
  std::uint64_t reconnects = 0;       ///< connections made again after one was lost
};

/// A message of a subscription (`connection::subscribe`).
struct message {
  std::string channel;  ///< The channel the message was published on.
  std::string payload;  ///< The message itself.
  /// The pattern that matched, for a pattern subscription (PSUBSCRIBE).
  std::string pattern;
};

/// The connection was lost, or could not be made: every command pending on
/// it fails with this. A `connection_broken`, so a pool discards it.
class connection_error : public connection_broken {
 public:
  using connection_broken::connection_broken;
};

namespace detail {

class connection_state;

/// Where a reply goes: one command's waiter, or one slot of a batch.
class reply_sink {
 public:
  virtual void deliver(std::uint32_t index, reply&& r) noexcept = 0;
  virtual void fail(const std::exception_ptr& e) noexcept = 0;

 protected:
  ~reply_sink() = default;
};

/// A command sent or queued: its reply goes to `sink` (nullptr once its
/// waiter was cancelled: the reply is read and dropped).
struct pending_reply {
  reply_sink* sink = nullptr;
  std::uint32_t index = 0;
};

/// The wait for one command's reply (connection::command's awaitable).
class reply_waiter : public corio::detail::waiter, public reply_sink {
 public:
  explicit reply_waiter(connection_state* st) noexcept : m_state(st) {}
  reply_waiter(const reply_waiter&) = delete;
  reply_waiter& operator=(const reply_waiter&) = delete;
  static constexpr bool await_ready() noexcept { return false; }
  void on_abort() noexcept;
  void deliver(std::uint32_t index, reply&& r) noexcept override;
  void fail(const std::exception_ptr& e) noexcept override;

 protected:
  ~reply_waiter() = default;
  /// Queues the command and parks; throws when the connection is unusable.
  bool suspend(std::coroutine_handle<> h, std::span<const std::string_view> args);
  /// The reply; throws redis::error for an error reply.
  reply resume();

 private:
  connection_state* m_state;
  pending_reply* m_slot = nullptr;
  std::optional<reply> m_reply;
  std::exception_ptr m_error;
};

/// connection::command's awaitable: the arguments, kept until it is
/// awaited (in the same expression: the strings are not copied).
template <std::size_t N>
class command_awaiter final : public reply_waiter {
 public:
  template <class... Args>
  explicit command_awaiter(connection_state* st, const Args&... args)
      : reply_waiter(st), m_args{command_arg(args)...} {}
  bool await_suspend(std::coroutine_handle<> h) {
    std::string_view views[N];
    for (std::size_t i = 0; i < N; ++i)
      views[i] = m_args[i].view();
    return suspend(h, std::span<const std::string_view>(views, N));
  }
  reply await_resume() { return resume(); }

 private:
  command_arg m_args[N];
};

}  // namespace detail

/// One connection to a Redis server, multiplexed: any number of tasks of
/// its loop issue commands on it at once, every command issued in one loop
/// tick goes out in one write (automatic pipelining, as ioredis does), and
/// replies are matched to commands in order. Blocking commands (BLPOP) and
/// transactions (MULTI/EXEC, WATCH) need a connection of their own: take
/// one from a `pool<redis::connection>`.
///
/// A command's error reply is thrown as `redis::error` and the connection
/// stays usable. A lost connection fails every pending command with
/// `connection_error`; with `reconnect` set, the next command connects
/// again.
///
/// Cancellation: a cancelled command's reply is read and dropped; the other
/// commands are not affected. Bound a command with `corio::timeout`.
///
/// With GCC 12, pass a named `connection_options`, not a braced temporary
/// (`connect({.port = 6379})`): GCC 12 destroys a braced temporary of a type
/// with strings inside a `co_await` expression wrongly (a free of frame
/// memory under ASan). This holds for every options struct in a `co_await`.
///
/// \code
///   corio::redis::connection_options options;
///   options.port = 6379;
///   auto redis = co_await corio::redis::connection::connect(options);
///   co_await redis.set("greeting", "hello");
///   std::optional<std::string> v = co_await redis.get("greeting");
///   corio::redis::reply r = co_await redis.command("HINCRBY", "counts", "visits", 1);
/// \endcode
class connection {
 public:
  /// A connection object that is not connected: broken() is true, and
  /// commands throw connection_error.
  connection() noexcept;
  /// Takes over `o`'s connection and its pending commands; `o` is left not connected.
  connection(connection&&) noexcept;
  /// Closes this object's connection, if any (its pending commands fail
  /// with connection_error), and takes over the other's.
  connection& operator=(connection&&) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  /// Commands still pending fail with `connection_error`.
  ~connection();

  /// Connects, and says hello (HELLO 3 or RESP2, AUTH, SELECT, SETNAME).
  /// A connection refused (std::system_error) or not made within
  /// connect_timeout (timeout_error) says which address: host:port, or the
  /// Unix socket's path.
  static task<connection> connect(connection_options options);

  /// Sends a command (strings, string views, byte spans, numbers) and
  /// waits for its reply; an error reply throws `redis::error`. Await it in
  /// the expression that makes it: the arguments are not copied until the
  /// command is queued. Nothing is allocated per command.
  template <class... Args>
  [[nodiscard]] detail::command_awaiter<sizeof...(Args)> command(const Args&... args) {
    return detail::command_awaiter<sizeof...(Args)>(m_state.get(), args...);
  }
  /// The same with the arguments in a range.
  task<reply> send(std::vector<std::string> args);

  /// Sends all `commands` in one write and returns their replies in order;
  /// an error reply is returned as one (`reply::is_error()`), not thrown.
  task<std::vector<reply>> send_all(const std::vector<std::vector<std::string>>& commands);

  // Typed helpers for the common commands.
  /// GET: the value, or std::nullopt when the key does not exist.
  /// redis::error when the key holds another type (WRONGTYPE).
  task<std::optional<std::string>> get(std::string_view key);
  /// SET with an expiry in seconds (0: none); true when it was set.
  task<bool> set(std::string_view key, std::string_view value,
                 std::chrono::seconds expire = std::chrono::seconds(0));
  /// SET with options; true when it was set (NX and XX may refuse).
  /// std::invalid_argument, with nothing sent, when both NX and XX are asked.
  task<bool> set(std::string_view key, std::string_view value, set_options options);
  /// MGET: one value per key, in order, std::nullopt for a missing key (or
  /// one of another type). `keys` must not be empty (the server refuses:
  /// redis::error).
  task<std::vector<std::optional<std::string>>> mget(std::span<const std::string> keys);
  /// DEL: 1 when the key existed and was removed, else 0.
  task<std::int64_t> del(std::string_view key);
  /// INCR: the value after the increment (a missing key counts as 0);
  /// redis::error when the value is not an integer.
  task<std::int64_t> incr(std::string_view key);
  /// EXPIRE: true when the timeout was set, false when the key does not exist.
  task<bool> expire(std::string_view key, std::chrono::seconds ttl);
  /// HGET: the field's value, or std::nullopt when the key or field does not exist.
  task<std::optional<std::string>> hget(std::string_view key, std::string_view field);
  /// HSET of one field: 1 when the field is new, 0 when it was updated.
  task<std::int64_t> hset(std::string_view key, std::string_view field, std::string_view value);
  /// LPUSH of one value: the length of the list after the push.
  task<std::int64_t> lpush(std::string_view key, std::string_view value);
  /// RPOP: the last element, or std::nullopt when the list is empty or missing.
  task<std::optional<std::string>> rpop(std::string_view key);
  /// PUBLISH: the number of clients that received the message.
  task<std::int64_t> publish(std::string_view channel, std::string_view message);

  /// Subscribes to `channels` (or, with `patterns`, to channel patterns)
  /// on a connection of its own (made with this one's options) and yields
  /// each message as it arrives. Ending the stream (destroying it, or
  /// cancelling its consumer) closes that connection, which unsubscribes.
  /// A subscriber that falls more than 65,536 messages behind fails with
  /// `connection_error`, as Redis itself disconnects slow subscribers.
  ///
  /// \code
  ///   auto messages = redis.subscribe({"news"});
  ///   while (auto m = co_await messages.next()) handle(m->payload);
  /// \endcode
  async_generator<message> subscribe(std::vector<std::string> channels, bool patterns = false);

  /// The RESP version the server speaks on this connection: 3 after HELLO
  /// 3, 2 when `resp3` was off or the server does not know HELLO; 0 for an
  /// object never connected (default-constructed or moved from). After the
  /// connection was lost it stays that of the last connection made.
  [[nodiscard]] int protocol() const noexcept;
  /// True after the connection was lost (and before a reconnect).
  [[nodiscard]] bool broken() const noexcept;
  /// What the connection did so far (all zero for an object never connected).
  [[nodiscard]] connection_stats stats() const noexcept;
  /// Closes now: pending commands fail with `connection_error`.
  void close() noexcept;

 private:
  explicit connection(std::unique_ptr<detail::connection_state> s) noexcept;
  static async_generator<message> subscribe_on(connection_options options,
                                               std::vector<std::string> channels, bool patterns);
  std::unique_ptr<detail::connection_state> m_state;
};

/// Commands gathered to go out in one write; `exec` returns their replies
/// in order, an error reply as one (`reply::is_error()`), not thrown.
///
/// \code
///   corio::redis::pipeline p;
///   p.get("a").set("b", "v").command("EXPIRE", "b", 60);
///   std::vector<corio::redis::reply> replies = co_await p.exec(redis);
/// \endcode
class pipeline {
 public:
  /// Appends a command (strings, string views, byte spans, numbers).
  template <class... Args>
  pipeline& command(const Args&... args) {
    std::vector<std::string>& c = m_commands.emplace_back();
    c.reserve(sizeof...(Args));
    (c.emplace_back(detail::command_arg(args).view()), ...);
    return *this;
  }
  /// Appends GET `key`.
  pipeline& get(std::string_view key) { return command("GET", key); }
  /// Appends SET `key` `value`.
  pipeline& set(std::string_view key, std::string_view value) { return command("SET", key, value); }
  /// Appends DEL `key`.
  pipeline& del(std::string_view key) { return command("DEL", key); }
  /// Appends INCR `key`.
  pipeline& incr(std::string_view key) { return command("INCR", key); }
  /// Sends every command in one write; the pipeline must outlive the await.
  [[nodiscard]] task<std::vector<reply>> exec(connection& c) const {
    return c.send_all(m_commands);
  }
  /// The number of commands gathered.
  [[nodiscard]] std::size_t size() const noexcept { return m_commands.size(); }
  /// Forgets every command, to gather a new batch.
  void clear() noexcept { m_commands.clear(); }

 private:
  std::vector<std::vector<std::string>> m_commands;
};

/// Hooks for a `pool<redis::connection>`, the home of connections that one
/// task needs to itself (BLPOP, MULTI/EXEC, WATCH): each is opened with
/// `options`, checked with PING after idling, and closed when it broke.
///
/// \code
///   corio::pool<corio::redis::connection> blocking(corio::redis::pool_hooks(opts),
///                                                  {.name = "redis-blocking"});
///   auto c = co_await blocking.acquire();
///   auto job = co_await c->command("BLPOP", "jobs", 5);
/// \endcode
corio::pool_hooks<connection> pool_hooks(connection_options options);

}  // namespace corio::redis
