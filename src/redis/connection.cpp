// redis::connection: the shared state, the reader and writer jobs, the
// handshake, reconnection and the typed helpers.
#include "corio/redis/connection.hpp"

#include <deque>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "corio/loop/detail/wake_slot.hpp"
#include "corio/net/socket_address.hpp"
#include "corio/net/tcp_stream.hpp"
#include "corio/pool/detail/job_owner.hpp"
#include "corio/task/cancel.hpp"

namespace corio::redis {

namespace detail {

/// Everything of a connection, at a stable address (the connection object
/// moves; its jobs and waiters point here).
class connection_state final : public corio::detail::job_owner {
 public:
  explicit connection_state(connection_options options)
      : m_options(std::move(options)),
        m_reader(m_options.limits),
        m_loop(&corio::detail::current_loop()) {
    m_flush.m_fire = &on_tick_end;
    m_flush.m_self = this;
  }
  connection_state(const connection_state&) = delete;
  connection_state& operator=(const connection_state&) = delete;
  ~connection_state() {
    lose(std::make_exception_ptr(connection_error("corio::redis: the connection was closed")));
  }

  /// Connects and says hello; on success, starts reading.
  task<> establish();
  /// establish() within connect_timeout; the timeout_error names the address.
  task<> establish_in_time();

  /// Where the options point: the Unix socket's path, or host:port.
  [[nodiscard]] std::string address() const {
    if (!m_options.unix_socket.empty()) return m_options.unix_socket;
    const bool ipv6 = m_options.host.find(':') != std::string::npos;
    return (ipv6 ? "[" + m_options.host + "]" : m_options.host) + ":" +
           std::to_string(m_options.port);
  }

  /// Throws unless a command may be queued now (connected, or reconnecting).
  void check_usable() {
    if (!m_broken) return;
    if (!m_options.reconnect) {
      if (m_error) std::rethrow_exception(m_error);
      throw connection_error("corio::redis: not connected");
    }
    if (!m_connecting) {
      m_connecting = true;
      spawn_job(reconnect(state_link(this)), "redis: reconnect");
    }
  }

  /// Queues a command; its reply goes to `sink`/`index` (set later).
  pending_reply& enqueue(std::span<const std::string_view> args) {
    redis::detail::append_command(m_out, args);
    m_pending.push_back({});
    ++m_stats.commands;
    if (!m_broken) m_loop->at_tick_end(m_flush);
    return m_pending.back();
  }

  /// The connection is gone: every pending command fails with `e`.
  void lose(const std::exception_ptr& e) noexcept {
    m_flush.unlink();
    m_out.clear();
    if (!m_broken) {
      m_broken = true;
      m_error = e;
      ++m_generation;
      m_stream.close();
      m_writing = false;
    }
    std::deque<pending_reply> failed;
    failed.swap(m_pending);
    for (const pending_reply& p : failed) {
      if (p.sink != nullptr) p.sink->fail(e);
    }
    wake_message_waiter();
  }

  connection_options m_options;
  tcp_stream m_stream;
  resp_reader m_reader;
  corio::detail::loop_core* m_loop;
  std::string m_out;                    // encoded, not yet written
  std::deque<pending_reply> m_pending;  // in the order of their replies
  std::uint64_t m_generation = 0;       // one per established stream
  bool m_broken = true;
  bool m_writing = false;  // a writer job has the sending side
  bool m_connecting = false;
  int m_protocol = 2;
  std::exception_ptr m_error;
  connection_stats m_stats;
  // A subscription's connection: every reply is a message or a
  // confirmation, none answers a queued command.
  bool m_subscription = false;
  std::deque<reply> m_messages;
  corio::detail::wake_slot m_message_arrival;  // the subscriber waits here
  static constexpr std::size_t max_unread_messages = 65536;

  /// Queues a command whose answers come as messages (SUBSCRIBE).
  void enqueue_unanswered(std::span<const std::string_view> args) {
    redis::detail::append_command(m_out, args);
    ++m_stats.commands;
    if (!m_broken) m_loop->at_tick_end(m_flush);
  }
  void wake_message_waiter() noexcept { m_message_arrival.notify(); }

 private:
  struct tick_hook : corio::detail::tick_end_node {
    connection_state* m_self = nullptr;
  };

  // A job's link to the state (job_owner.hpp).
  struct state_link : corio::detail::job_link {
    explicit state_link(connection_state* s) noexcept : job_link(s) {}
    [[nodiscard]] connection_state* state() const noexcept {
      return static_cast<connection_state*>(m_owner);
    }
  };

  static void on_tick_end(corio::detail::tick_end_node& n) noexcept {
    static_cast<tick_hook&>(n).m_self->flush();
  }

  // The tick's commands, in one send when the socket takes them (the usual
  // case: no task hop, one system call per tick); the rest goes to a writer
  // job that waits for the socket.
  void flush() noexcept {
    if (m_broken || m_writing || m_out.empty()) return;
    std::error_code ec;
    const std::size_t n = m_stream.try_write_some(m_out.data(), m_out.size(), ec);
    ++m_stats.writes;
    if (n == m_out.size()) {
      m_out.clear();
      return;
    }
    if (ec) {
      lose(std::make_exception_ptr(connection_error("corio::redis: send: " + ec.message())));
      return;
    }
    m_out.erase(0, n);
    m_writing = true;
    try {
      spawn_job(write_loop(state_link(this), m_generation), "redis: writer");
    } catch (...) {
      lose(std::current_exception());
    }
  }

  static task<> write_loop(state_link link, std::uint64_t generation) {
    std::string buffer;  // in the frame: io_uring may write from it after a cancel
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      if (st->m_out.empty()) {
        st->m_writing = false;
        co_return;
      }
      buffer.clear();
      buffer.swap(st->m_out);
      std::error_code ec;
      co_await st->m_stream.write_all(buffer.data(), buffer.size(), ec);
      st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      ++st->m_stats.writes;
      if (ec) {
        st->lose(std::make_exception_ptr(connection_error("corio::redis: send: " + ec.message())));
        co_return;
      }
    }
  }

  // Reads and hands each reply to its command. The reader takes bulk bytes
  // as they come and lines only whole, so what it leaves of a read is at
  // most a partial line: a read is parsed where it landed, and only that
  // tail is kept (in `input`) for the next one.
  static task<> read_loop(state_link link, std::uint64_t generation, std::string input) {
    constexpr std::size_t chunk = std::size_t{64} << 10;
    std::unique_ptr<char[]> buf(new char[chunk]);
    std::string_view data = input;
    bool in_input = true;  // `data` views `input` (else the read buffer)
    for (;;) {
      connection_state* st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      try {
        data.remove_prefix(st->m_reader.feed(data));
        while (auto r = st->m_reader.next())
          st->dispatch(std::move(*r));
      } catch (const protocol_error&) {
        st->lose(std::current_exception());
        co_return;
      }
      if (st->m_broken) co_return;  // dispatch found a reply nobody asked for
      if (in_input) {               // keep the partial line, if any
        input.erase(0, input.size() - data.size());
      } else {
        input.assign(data);
      }
      std::error_code ec;
      const std::size_t n = co_await st->m_stream.read_some(buf.get(), chunk, ec);
      st = link.state();
      if (st == nullptr || st->m_generation != generation) co_return;
      ++st->m_stats.reads;
      if (ec || n == 0) {
        st->lose(std::make_exception_ptr(
            connection_error(ec ? "corio::redis: recv: " + ec.message()
                                : std::string("corio::redis: the server closed the connection"))));
        co_return;
      }
      in_input = !input.empty();
      if (in_input) {
        input.append(buf.get(), n);
        data = input;
      } else {
        data = std::string_view(buf.get(), n);
      }
    }
  }

  static task<> reconnect(state_link link) {
    std::exception_ptr error;
    try {
      connection_state* st = link.state();
      co_await st->establish_in_time();
    } catch (const cancelled_error&) {
      throw;
    } catch (...) {
      error = std::current_exception();
    }
    connection_state* st = link.state();
    if (st == nullptr) co_return;
    st->m_connecting = false;
    if (error) {
      st->m_error = error;
      st->lose(error);  // the commands queued for the new connection fail
    } else {
      ++st->m_stats.reconnects;
    }
  }

  void dispatch(reply&& r) noexcept {
    if (m_subscription) {
      if (m_messages.size() >= max_unread_messages) {
        lose(std::make_exception_ptr(
            connection_error("corio::redis: a subscriber fell more than 65536 messages behind")));
        return;
      }
      try {
        m_messages.push_back(std::move(r));
      } catch (...) {
        lose(std::current_exception());
        return;
      }
      wake_message_waiter();
      return;
    }
    if (r.type() == reply::kind::push) return;  // out of band (client tracking): not a reply
    if (m_pending.empty()) {
      lose(std::make_exception_ptr(
          protocol_error("corio::redis: a reply nobody asked for: " + r.describe())));
      return;
    }
    const pending_reply p = m_pending.front();
    m_pending.pop_front();
    if (p.sink != nullptr) {
      p.sink->deliver(p.index, std::move(r));
    } else {
      ++m_stats.dropped_replies;
    }
  }

  // A command and its reply on a stream no one else uses yet.
  static task<reply> round_trip(tcp_stream& s, resp_reader& reader, std::string& input,
                                std::vector<std::string> args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    std::string out;
    redis::detail::append_command(out, views);
    co_await s.write_all(out.data(), out.size());
    char buf[4096];
    for (;;) {
      input.erase(0, reader.feed(input));
      if (auto r = reader.next()) co_return std::move(*r);
      const std::size_t n = co_await s.read_some(buf, sizeof buf);
      if (n == 0) throw connection_error("corio::redis: the server closed the connection");
      input.append(buf, n);
    }
  }

  tick_hook m_flush;

  friend class redis::connection;
};

task<> connection_state::establish_in_time() {
  try {
    co_await timeout(m_options.connect_timeout, establish());
  } catch (const timeout_error&) {
    throw timeout_error("corio::redis: connecting to " + address() +
                        " took longer than connect_timeout");
  }
}

task<> connection_state::establish() {
  tcp_stream s;
  try {
    if (!m_options.unix_socket.empty()) {
      s = co_await tcp_stream::connect(socket_address::unix_path(m_options.unix_socket));
    } else {
      s = co_await tcp_stream::connect(m_options.host, m_options.port);
      s.set_nodelay(true);
    }
  } catch (const std::system_error& e) {
    // "connect: Connection refused" alone does not say which server.
    throw std::system_error(e.code(), "corio::redis: connect to " + address());
  }
  resp_reader reader(m_options.limits);
  std::string input;
  auto check = [](const reply& r, const char* what) {
    if (r.is_error()) throw error(std::string(what) + ": " + std::string(r.str()));
  };
  int protocol = 2;
  bool said_hello = false;
  if (m_options.resp3) {
    std::vector<std::string> hello{std::string("HELLO"), std::string("3")};
    if (!m_options.password.empty()) {
      hello.emplace_back("AUTH");
      hello.push_back(m_options.username.empty() ? std::string("default") : m_options.username);
      hello.push_back(m_options.password);
    }
    if (!m_options.client_name.empty()) {
      hello.emplace_back("SETNAME");
      hello.push_back(m_options.client_name);
    }
    const reply r = co_await round_trip(s, reader, input, std::move(hello));
    if (!r.is_error()) {
      protocol = 3;
      said_hello = true;
    } else if (r.str().find("unknown command") == std::string_view::npos &&
               r.str().find("NOPROTO") == std::string_view::npos) {
      check(r, "corio::redis: HELLO");  // wrong password, say
    }
  }
  if (!said_hello) {  // RESP2
    if (!m_options.password.empty()) {
      std::vector<std::string> auth{std::string("AUTH")};
      if (!m_options.username.empty()) auth.push_back(m_options.username);
      auth.push_back(m_options.password);
      check(co_await round_trip(s, reader, input, std::move(auth)), "corio::redis: AUTH");
    }
    if (!m_options.client_name.empty()) {
      // (Commands built before the co_await: GCC 12 miscompiles a braced
      // list of string literals held across one.)
      std::vector<std::string> setname{std::string("CLIENT"), std::string("SETNAME"),
                                       m_options.client_name};
      check(co_await round_trip(s, reader, input, std::move(setname)),
            "corio::redis: CLIENT SETNAME");
    }
  }
  if (m_options.database != 0) {
    std::vector<std::string> select{std::string("SELECT"), std::to_string(m_options.database)};
    check(co_await round_trip(s, reader, input, std::move(select)), "corio::redis: SELECT");
  }
  m_stream = std::move(s);
  m_reader = std::move(reader);
  m_protocol = protocol;
  m_broken = false;
  m_error = nullptr;
  ++m_generation;
  spawn_job(read_loop(state_link(this), m_generation, std::move(input)), "redis: reader");
  if (!m_out.empty()) m_loop->at_tick_end(m_flush);  // commands queued while reconnecting
}

// ---- the waiter of one command ------------------------------------------------

bool reply_waiter::suspend(std::coroutine_handle<> h, std::span<const std::string_view> args) {
  if (m_state == nullptr) throw connection_error("corio::redis: not connected");
  m_state->check_usable();
  pending_reply& slot = m_state->enqueue(args);
  if (!corio::detail::park(*this, h, "redis reply")) return false;  // cancelled: reply dropped
  slot.sink = this;
  m_slot = &slot;
  return true;
}

void reply_waiter::on_abort() noexcept {
  if (m_slot != nullptr) m_slot->sink = nullptr;
}

void reply_waiter::deliver(std::uint32_t /*index*/, reply&& r) noexcept {
  m_slot = nullptr;
  m_reply.emplace(std::move(r));
  wake();
}

void reply_waiter::fail(const std::exception_ptr& e) noexcept {
  m_slot = nullptr;
  m_error = e;
  wake();
}

reply reply_waiter::resume() {
  finish();
  if (m_error) std::rethrow_exception(m_error);
  if (m_reply->is_error()) throw error(std::string(m_reply->str()));
  return std::move(*m_reply);
}

namespace {

// The replies of a batch, in order; woken when the last arrives.
class batch_waiter final : public corio::detail::waiter, public reply_sink {
 public:
  batch_waiter(connection_state& st, const std::vector<std::vector<std::string>>& commands)
      : m_state(&st), m_commands(&commands), m_replies(commands.size()) {}
  static constexpr bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    m_state->check_usable();
    m_slots.reserve(m_commands->size());
    std::vector<std::string_view> views;
    for (const auto& c : *m_commands) {
      views.assign(c.begin(), c.end());
      m_slots.push_back(&m_state->enqueue(views));
    }
    if (m_slots.empty()) return false;
    if (!corio::detail::park(*this, h, "redis replies")) return false;
    for (std::size_t i = 0; i < m_slots.size(); ++i)
      *m_slots[i] = {this, static_cast<std::uint32_t>(i)};
    m_left = m_slots.size();
    return true;
  }
  void on_abort() noexcept {
    for (pending_reply* s : m_slots) {
      if (s != nullptr) s->sink = nullptr;
    }
  }
  void deliver(std::uint32_t index, reply&& r) noexcept override {
    m_slots[index] = nullptr;
    m_replies[index] = std::move(r);
    if (--m_left == 0) wake();
  }
  void fail(const std::exception_ptr& e) noexcept override {
    if (!m_error) m_error = e;
    for (pending_reply*& s : m_slots)
      s = nullptr;  // the connection is gone: the rest fail with it
    if (m_left != 0) {
      m_left = 0;
      wake();
    }
  }
  std::vector<reply> await_resume() {
    finish();
    if (m_error) std::rethrow_exception(m_error);
    return std::move(m_replies);
  }

 private:
  connection_state* m_state;
  const std::vector<std::vector<std::string>>* m_commands;
  std::vector<pending_reply*> m_slots;
  std::vector<reply> m_replies;
  std::size_t m_left = 0;
  std::exception_ptr m_error;
};

}  // namespace

}  // namespace detail

// ---- connection ------------------------------------------------------------------

connection::connection() noexcept = default;
connection::connection(std::unique_ptr<detail::connection_state> s) noexcept
    : m_state(std::move(s)) {}
connection::connection(connection&&) noexcept = default;
connection& connection::operator=(connection&&) noexcept = default;
connection::~connection() = default;

task<connection> connection::connect(connection_options options) {
  auto st = std::make_unique<detail::connection_state>(std::move(options));
  co_await st->establish_in_time();
  co_return connection(std::move(st));
}

task<reply> connection::send(std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  struct awaiter final : detail::reply_waiter {
    using reply_waiter::reply_waiter;
    std::span<const std::string_view> m_args;
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h, m_args); }
    reply await_resume() { return resume(); }
  };
  awaiter a(m_state.get());
  a.m_args = views;
  co_return co_await a;
}

task<std::vector<reply>> connection::send_all(
    const std::vector<std::vector<std::string>>& commands) {
  if (!m_state) throw connection_error("corio::redis: not connected");
  co_return co_await detail::batch_waiter(*m_state, commands);
}

namespace {
std::optional<std::string> string_or_nil(reply r) {
  if (r.is_nil()) return std::nullopt;
  return r.take_str();
}
}  // namespace

task<std::optional<std::string>> connection::get(std::string_view key) {
  co_return string_or_nil(co_await command("GET", key));
}

task<bool> connection::set(std::string_view key, std::string_view value,
                           std::chrono::seconds expire) {
  // (Not one `?:` with a co_await on each side: GCC 12 frees a temporary
  // of the branch not taken.)
  if (expire.count() > 0) {
    co_return !(co_await command("SET", key, value, "EX", expire.count())).is_nil();
  }
  co_return !(co_await command("SET", key, value)).is_nil();
}

task<bool> connection::set(std::string_view key, std::string_view value, set_options options) {
  if (options.only_if_absent && options.only_if_present) {
    // The server would refuse it as a syntax error: say why, sending nothing.
    throw std::invalid_argument(
        "corio::redis: set with both only_if_absent (NX) and only_if_present (XX)");
  }
  std::vector<std::string> args = {"SET", std::string(key), std::string(value)};
  if (options.expire.count() > 0) {
    args.emplace_back("PX");
    args.push_back(std::to_string(options.expire.count()));
  } else if (options.keep_ttl) {
    args.emplace_back("KEEPTTL");
  }
  if (options.only_if_absent) args.emplace_back("NX");
  if (options.only_if_present) args.emplace_back("XX");
  co_return !(co_await send(std::move(args))).is_nil();
}

task<std::vector<std::optional<std::string>>> connection::mget(std::span<const std::string> keys) {
  std::vector<std::string> args;
  args.reserve(keys.size() + 1);
  args.emplace_back("MGET");
  args.insert(args.end(), keys.begin(), keys.end());
  reply r = co_await send(std::move(args));
  std::vector<std::optional<std::string>> out;
  out.reserve(r.size());
  for (reply& e : r.elements())
    out.push_back(string_or_nil(std::move(e)));
  co_return out;
}

task<std::int64_t> connection::del(std::string_view key) {
  co_return (co_await command("DEL", key)).integer();
}

task<std::int64_t> connection::incr(std::string_view key) {
  co_return (co_await command("INCR", key)).integer();
}

task<bool> connection::expire(std::string_view key, std::chrono::seconds ttl) {
  co_return (co_await command("EXPIRE", key, ttl.count())).integer() == 1;
}

task<std::optional<std::string>> connection::hget(std::string_view key, std::string_view field) {
  co_return string_or_nil(co_await command("HGET", key, field));
}

task<std::int64_t> connection::hset(std::string_view key, std::string_view field,
                                    std::string_view value) {
  co_return (co_await command("HSET", key, field, value)).integer();
}

task<std::int64_t> connection::lpush(std::string_view key, std::string_view value) {
  co_return (co_await command("LPUSH", key, value)).integer();
}

task<std::optional<std::string>> connection::rpop(std::string_view key) {
  co_return string_or_nil(co_await command("RPOP", key));
}

task<std::int64_t> connection::publish(std::string_view channel, std::string_view message) {
  co_return (co_await command("PUBLISH", channel, message)).integer();
}

int connection::protocol() const noexcept {
  return m_state ? m_state->m_protocol : 0;
}

bool connection::broken() const noexcept {
  return !m_state || m_state->m_broken;
}

connection_stats connection::stats() const noexcept {
  return m_state ? m_state->m_stats : connection_stats{};
}

namespace {

// "message"/"pmessage" arrays (RESP2) or pushes (RESP3); the rest
// (confirmations, pongs) are not messages.
bool to_message(reply& r, message& m) {
  if (!r.is_aggregate() || r.size() < 3) return false;
  std::vector<reply>& e = r.elements();
  const std::string_view kind = e[0].type() == reply::kind::nil ? "" : e[0].str();
  if (kind == "message" && e.size() == 3) {
    m.channel = e[1].take_str();
    m.payload = e[2].take_str();
    m.pattern.clear();
    return true;
  }
  if (kind == "pmessage" && e.size() == 4) {
    m.pattern = e[1].take_str();
    m.channel = e[2].take_str();
    m.payload = e[3].take_str();
    return true;
  }
  return false;
}

}  // namespace

async_generator<message> connection::subscribe_on(connection_options options,
                                                  std::vector<std::string> channels,
                                                  bool patterns) {
  options.reconnect = false;  // a lost subscription ends the stream
  connection sub = co_await connection::connect(std::move(options));
  detail::connection_state& st = *sub.m_state;
  st.m_subscription = true;
  std::vector<std::string_view> args;
  args.reserve(channels.size() + 1);
  args.emplace_back(patterns ? "PSUBSCRIBE" : "SUBSCRIBE");
  args.insert(args.end(), channels.begin(), channels.end());
  st.enqueue_unanswered(args);
  message m;
  for (;;) {
    co_await st.m_message_arrival.wait([&st] { return !st.m_messages.empty() || st.m_broken; },
                                       "redis message");
    while (!st.m_messages.empty()) {
      reply r = std::move(st.m_messages.front());
      st.m_messages.pop_front();
      if (to_message(r, m)) co_yield m;
    }
    if (st.m_broken) std::rethrow_exception(st.m_error);
  }
}

async_generator<message> connection::subscribe(std::vector<std::string> channels, bool patterns) {
  if (!m_state) throw connection_error("corio::redis: not connected");
  return subscribe_on(m_state->m_options, std::move(channels), patterns);
}

namespace {
task<bool> ping(connection& c) {
  co_return (co_await c.command("PING")).str() == "PONG";
}
}  // namespace

corio::pool_hooks<connection> pool_hooks(connection_options options) {
  corio::pool_hooks<connection> h;
  h.create = [options = std::move(options)] { return connection::connect(options); };
  h.validate = [](connection& c) { return ping(c); };
  h.has_broken = [](const connection& c) { return c.broken(); };
  return h;
}

void connection::close() noexcept {
  if (m_state) {
    m_state->lose(
        std::make_exception_ptr(connection_error("corio::redis: the connection was closed")));
  }
}

}  // namespace corio::redis
