// The examples of the guide's "I/O and servers" page (docs/guide/io_servers.md):
// every snippet between `//! [name]` markers runs here, and main checks what
// it produced. Network on 127.0.0.1 only, ports chosen by the kernel.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "check.hpp"
#include "corio/corio.hpp"

using namespace std::chrono_literals;

namespace {

using guide::check;

// A client for the checks: sends `request`, returns all the server sends
// until it closes the connection.
corio::task<std::string> exchange(corio::socket_address server, std::string request) {
  auto c = co_await corio::tcp_stream::connect(server);
  co_await c.write_all(request.data(), request.size());
  std::string in;
  char buf[4096];
  std::error_code ec;  // a reset is an end too
  for (;;) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) break;
    in.append(buf, n);
  }
  co_return in;
}

// Cancels a server task and waits until it has closed its connections.
template <class T>
corio::task<> stop(corio::join_handle<T>& server) {
  server.cancel();
  try {
    co_await server;
  } catch (const corio::cancelled_error&) {
  }
}

//! [echo]
// One connection: whatever the peer sends comes back.
corio::task<> echo(corio::tcp_stream stream) {
  corio::tcp_stream s = std::move(stream);  // a local: closed as soon as the task ends
  char buf[4096];
  std::error_code ec;  // a reset ends this connection quietly, not the server
  for (;;) {
    const std::size_t n = co_await s.read_some(buf, sizeof buf, ec);
    if (ec || n == 0) co_return;  // gone, or closed its side
    (void)co_await s.write_all(buf, n, ec);
    if (ec) co_return;
  }
}

corio::task<std::string> echo_round_trip() {
  // Port 0: the kernel picks a free one; local_address() tells which.
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  auto server = corio::spawn(corio::serve(listener, echo), "echo server");

  auto client = co_await corio::tcp_stream::connect(listener.local_address());
  co_await client.write_all("ping", 4);
  char reply[4];
  co_await client.read_exact(reply, sizeof reply);

  server.cancel();  // cancels every connection task, closes their sockets
  try {
    co_await server;
  } catch (const corio::cancelled_error&) {
  }
  co_return std::string(reply, sizeof reply);
}
//! [echo]

//! [lines]
// A line protocol: "name\n" in, "hello, name\n" out. The reader never holds
// more than 4 KiB, a line may not pass 64 bytes, and the answers to a burst
// of lines leave in one write.
corio::task<> greet(corio::tcp_stream stream) {
  corio::tcp_stream s = std::move(stream);
  corio::buffered_reader in(s, 4096);
  corio::buffered_writer out(s);
  for (;;) {
    std::string_view line;
    bool too_long = false;
    try {
      line = co_await in.read_line(64);  // a view into the reader's buffer
    } catch (const corio::limit_overrun_error&) {
      too_long = true;  // no co_await in a catch handler: handled below
    }
    if (too_long) {
      co_await out.write("ERR line too long\n");
      break;
    }
    if (line.empty()) break;  // end of stream
    co_await out.write("hello, ");
    co_await out.write(line);                         // copied before the next read
    if (in.buffered().empty()) co_await out.flush();  // nothing more queued: answer now
  }
  co_await out.flush();
}
//! [lines]

corio::task<std::string> greet_round_trip() {
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  auto server = corio::spawn(corio::serve(listener, greet));
  std::string request = "ann\nbob\n" + std::string(100, 'x') + "\n";
  std::string reply = co_await exchange(listener.local_address(), std::move(request));
  co_await stop(server);
  co_return reply;
}

//! [http]
// A plain function is the cheapest handler: no coroutine frame per request.
void hello(const corio::http_request& req, corio::http_response& res) {
  res.add_header("Content-Type", "text/plain");
  if (req.target == "/") {
    res.set_body("Hello, World!");
  } else {
    res.set_status(404);
    res.set_body("not here");
  }
}

// A handler that awaits returns task<>; the server awaits it per request.
corio::task<> slow_hello(const corio::http_request& req, corio::http_response& res) {
  co_await corio::sleep(1ms);  // stands in for a database call
  res.set_body(std::string("you asked for ").append(req.target));
}
//! [http]

corio::task<> http_examples() {
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  const auto address = listener.local_address();
  //! [serve_http]
  auto server = corio::spawn(corio::serve_http(listener, hello), "http");
  //! [serve_http]
  std::string ok =
      co_await exchange(address, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  check(ok.starts_with("HTTP/1.1 200 OK\r\n"), "GET / answers 200");
  check(ok.find("Content-Length: 13\r\n") != std::string::npos, "Content-Length set by the server");
  check(ok.ends_with("\r\n\r\nHello, World!"), "GET / has the body");
  // Two pipelined requests: both answered, in order, on one connection.
  std::string two = co_await exchange(
      address,
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  check(two.starts_with("HTTP/1.1 404 Not Found\r\n"), "the first pipelined request gets 404");
  check(two.ends_with("Hello, World!"), "the second pipelined request gets 200");
  co_await stop(server);

  auto listener2 = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  auto server2 = corio::spawn(corio::serve_http(listener2, slow_hello));
  std::string slow = co_await exchange(listener2.local_address(),
                                       "GET /x HTTP/1.0\r\n\r\n");  // 1.0: closes after
  check(slow.ends_with("you asked for /x"), "a coroutine handler answers");
  co_await stop(server2);
  std::printf("http: 200, pipelined 404 + 200, coroutine handler ok\n");
}

corio::task<> hostile_clients() {
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  const auto address = listener.local_address();
  //! [http_options]
  corio::server_stats stats;  // the server writes it; read it any time on this loop
  corio::http_options options{
      .limits = {.max_header_bytes = 1024, .max_headers = 16, .max_body_bytes = 4096},
      .header_timeout = 200ms,  // the whole head, from its first byte: slowloris gets 408
      .body_timeout = 1s,       // the whole body, from the end of the head
      .keep_alive_timeout = 5s,
      .write_timeout = 5s,     // a client that stops reading our response
      .max_connections = 100,  // more wait in the listen backlog
      .stats = &stats,
  };
  auto server = corio::spawn(corio::serve_http(listener, hello, options));
  //! [http_options]

  //! [hostile]
  // Half a head, then silence: 408 once header_timeout has passed.
  std::string slow = co_await exchange(address, "GET / HTTP/1.1\r\nHost: x\r\n");
  // A head over limits.max_header_bytes: 431.
  std::string big_head = co_await exchange(
      address, "GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + std::string(2000, 'j') + "\r\n\r\n");
  // A body over limits.max_body_bytes, refused from its Content-Length: 413.
  std::string big_body =
      co_await exchange(address, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  // Chunked bodies are refused rather than half-supported: 501.
  std::string chunked = co_await exchange(
      address, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  // Two Content-Lengths that disagree (request smuggling): 400.
  std::string smuggle = co_await exchange(
      address, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
  //! [hostile]
  check(slow.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "a trickled head gets 408");
  check(slow.find("Connection: close\r\n") != std::string::npos, "408 closes the connection");
  check(big_head.starts_with("HTTP/1.1 431 "), "an oversized head gets 431");
  check(big_body.starts_with("HTTP/1.1 413 "), "an oversized body gets 413");
  check(chunked.starts_with("HTTP/1.1 501 "), "Transfer-Encoding gets 501");
  check(smuggle.starts_with("HTTP/1.1 400 "), "conflicting Content-Length gets 400");
  check(stats.timed_out == 1, "one connection timed out");
  check(stats.accepted == 5, "five connections accepted");
  co_await stop(server);
  std::printf("hostile clients: 408, 431, 413, 501, 400; timed_out %llu, accepted %llu\n",
              static_cast<unsigned long long>(stats.timed_out),
              static_cast<unsigned long long>(stats.accepted));
}

corio::task<std::string> udp_example() {
  //! [udp]
  auto server = corio::udp_socket::bind(corio::socket_address::loopback(0));
  auto client = corio::udp_socket::bind(corio::socket_address::loopback(0));
  const corio::socket_address to = server.local_address();
  co_await client.send_to("ping", 4, to);  // one datagram, all of it or an error

  char buf[1500];
  corio::datagram d = co_await server.receive_from(buf, sizeof buf);
  co_await server.send_to(buf, d.size, d.from);  // answer whoever sent it

  char back[1500];
  corio::datagram r = co_await client.receive_from(back, sizeof back);
  //! [udp]
  check(!r.truncated && r.from.port() == to.port(), "the answer comes from the server");
  co_return std::string(back, r.size);
}

corio::task<> file_example(std::string dir) {
  //! [files]
  const std::string path = dir + "/notes.txt";
  co_await corio::write_file(path, "one\ntwo\n");
  {
    auto f = co_await corio::file::open(path, corio::open_mode::append);
    co_await f.write_all("three\n", 6);
    co_await f.sync();  // on the disk when this returns
  }
  // The whole file, refusing one over 1 MiB rather than reading it all.
  std::string all = co_await corio::read_file(path, 1 << 20);
  //! [files]
  check(all == "one\ntwo\nthree\n", "read_file reads what was written");
  bool refused = false;
  try {
    (void)co_await corio::read_file(path, 4);
  } catch (const corio::limit_overrun_error&) {
    refused = true;
  }
  check(refused, "read_file refuses a file over max_bytes");
  std::printf("files: %zu bytes written and read back; over max_bytes refused\n", all.size());
}

corio::task<> process_example() {
  //! [run_process]
  // asyncio's communicate(): feed stdin, collect stdout and stderr, wait.
  corio::process_options upper{.argv = {"tr", "a-z", "A-Z"}, .stdout_mode = corio::stdio::pipe};
  corio::process_result r = co_await corio::run_process(std::move(upper), "shout\n");
  //! [run_process]
  check(r.returncode == 0 && r.out == "SHOUT\n", "run_process collects stdout");

  //! [subprocess]
  // Line by line as the child writes, with the exit status at the end.
  corio::process_options script{.argv = {"sh", "-c", "echo one; echo two; exit 3"},
                                .stdout_mode = corio::stdio::pipe};
  auto child = corio::subprocess::spawn(script);
  corio::buffered_reader<corio::pipe_stream> lines(child.stdout_pipe());
  std::string seen;
  for (;;) {
    std::string_view line = co_await lines.read_line(1024);
    if (line.empty()) break;  // the child closed its stdout
    seen += line;
  }
  const int status = co_await child.wait();  // exit code, or -signal
  //! [subprocess]
  check(seen == "one\ntwo\n" && status == 3, "subprocess lines and exit status");
  std::printf("processes: run_process \"%s\", subprocess exit status %d\n",
              r.out.substr(0, r.out.size() - 1).c_str(), status);
}

//! [shutdown]
// Serves until SIGINT or SIGTERM, then stops gracefully: no new
// connections, each request under way answered (with Connection: close),
// idle keep-alive connections closed at once, and whatever is still open
// after 10 seconds cancelled.
corio::task<int> serve_until_signal(corio::signal_set& signals, corio::tcp_listener& listener) {
  corio::server_shutdown stop;
  auto server = corio::spawn(
      corio::serve_http(listener, hello,
                        {.shutdown = &stop, .drain_timeout = std::chrono::seconds(10)}),
      "http");
  const int sig = co_await signals.wait();
  stop.request();
  co_await server;  // returns once every connection is closed
  co_return sig;
}
//! [shutdown]

corio::task<> shutdown_example(corio::signal_set& stop) {
  auto listener = corio::tcp_listener::bind(corio::socket_address::loopback(0));
  auto serving = corio::spawn(serve_until_signal(stop, listener));
  // A keep-alive client: one request answered, then the connection stays open.
  auto c = co_await corio::tcp_stream::connect(listener.local_address());
  const std::string_view req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  co_await c.write_all(req.data(), req.size());
  std::string in;
  char buf[4096];
  while (!in.ends_with("Hello, World!")) {
    const std::size_t n = co_await c.read_some(buf, sizeof buf);
    check(n != 0, "the keep-alive response arrives");
    in.append(buf, n);
  }
  ::raise(SIGTERM);  // to this thread, where the set blocks it
  const int sig = co_await serving;
  std::error_code ec;
  const std::size_t n = co_await c.read_some(buf, sizeof buf, ec);
  check(sig == SIGTERM, "the signal arrives as a value");
  check(ec || n == 0, "the idle connection was closed by the graceful stop");
  std::printf("shutdown: signal %d, idle keep-alive connection closed\n", sig);
}

corio::task<int> amain(corio::signal_set& stop) {
  const std::string echoed = co_await echo_round_trip();
  check(echoed == "ping", "echo returns what was sent");
  std::printf("echo: \"%s\"\n", echoed.c_str());

  const std::string greeted = co_await greet_round_trip();
  check(greeted == "hello, ann\nhello, bob\nERR line too long\n", "line protocol replies");
  std::printf("lines: 2 greetings, then ERR for a 101-byte line\n");

  co_await http_examples();
  co_await hostile_clients();

  const std::string pong = co_await udp_example();
  check(pong == "ping", "udp echo");
  std::printf("udp: \"%s\" came back\n", pong.c_str());

  std::string dir = (std::filesystem::temp_directory_path() / "corio-guide-XXXXXX").string();
  check(::mkdtemp(dir.data()) != nullptr, "mkdtemp");
  co_await file_example(dir);
  std::filesystem::remove_all(dir);

  co_await process_example();
  co_await shutdown_example(stop);
  std::printf("io_servers: all checks passed\n");
  co_return 0;
}

}  // namespace

//! [signal_set]
int main() {
  // First thing: the signals are blocked on this thread and on the threads
  // it starts later (the pools'), so they can only arrive through the set.
  corio::signal_set stop{SIGINT, SIGTERM};
  return corio::run(amain(stop));
}
//! [signal_set]
