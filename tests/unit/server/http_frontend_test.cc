// The HTTP frontend over real loopback sockets against a fake core (http_fake_server.h) that
// answers asynchronously from its own thread.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <zlib.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "http_fake_server.h"
#include "server/http/http_frontend.h"

namespace kiln::server::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Response = bhttp::response<bhttp::string_body>;
using Headers = std::vector<std::pair<std::string, std::string>>;
using FakeServer = kiln::server::testing::FakeServer;

// A blocking HTTP/1.1 client on one keep-alive connection.
class Client {
 public:
  explicit Client(int port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }
  void send(bhttp::verb method, const std::string& target, std::string body = "",
            const Headers& headers = {}) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = std::move(body);
    req.prepare_payload();
    bhttp::write(socket_, req);
  }
  Response receive() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1u << 30);
    bhttp::read(socket_, buffer_, parser);
    return parser.release();
  }
  Response request(bhttp::verb method, const std::string& target, std::string body = "",
                   const Headers& headers = {}) {
    send(method, target, std::move(body), headers);
    return receive();
  }
  Response get(const std::string& target) { return request(bhttp::verb::get, target); }
  Response post(const std::string& target, std::string body, const Headers& headers = {}) {
    return request(bhttp::verb::post, target, std::move(body), headers);
  }
  tcp::socket& socket() { return socket_; }

 private:
  net::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

rapidjson::Document json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::string error_of(const Response& r) {
  rapidjson::Document d = json(r.body());
  return d.IsObject() && d.HasMember("error") ? d["error"].GetString() : "<no error member>";
}

std::string header(const Response& r, std::string_view name) {
  auto it = r.find(beast::string_view(name.data(), name.size()));
  return it == r.end() ? "" : std::string(it->value());
}

std::string zlib_compress(const std::string& data, int window_bits) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = data.size();
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = out.size();
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string gunzip(const std::string& data) {
  z_stream zs{};
  inflateInit2(&zs, 16 + 15);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = data.size();
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = out.size();
  const int rc = inflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? out : "<corrupt gzip>";
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string json_infer(float a, float b) {
  return R"({"id":"q","inputs":[{"name":"x","datatype":"FP32","shape":[1,2],"data":[)" +
         std::to_string(a) + "," + std::to_string(b) + "]}]}";
}

// Waits up to 5 s for `pred`.
template <typename Pred>
bool eventually(Pred pred) {
  for (int i = 0; i < 500; ++i) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

class HttpFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.thread_count = 2;
    options.max_body_bytes = 64 * 1024;
    auto f = HttpFrontend::start(server_, options);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    frontend_ = std::move(f).value();
    ASSERT_GT(frontend_->port(), 0);
  }
  int port() const { return frontend_->port(); }

  FakeServer server_;
  std::unique_ptr<HttpFrontend> frontend_;  // destroyed before the fake core
};

TEST_F(HttpFrontendTest, HealthAnswers200Or400WithEmptyBodies) {
  Client c(port());
  Response live = c.get("/v2/health/live");
  EXPECT_EQ(live.result_int(), 200);
  EXPECT_TRUE(live.body().empty());
  EXPECT_EQ(c.get("/v2/health/ready").result_int(), 200);
  server_.ready_flag = false;
  Response ready = c.get("/v2/health/ready");
  EXPECT_EQ(ready.result_int(), 400);
  EXPECT_TRUE(ready.body().empty());
  server_.live_flag = false;
  EXPECT_EQ(c.get("/v2/health/live").result_int(), 400);
}

TEST_F(HttpFrontendTest, ServerAndModelMetadataConfigAndReadiness) {
  Client c(port());
  Response meta = c.get("/v2");
  ASSERT_EQ(meta.result_int(), 200);
  EXPECT_EQ(header(meta, "Content-Type"), "application/json");
  auto d = json(meta.body());
  EXPECT_STREQ(d["name"].GetString(), "kiln-fake");
  EXPECT_STREQ(d["version"].GetString(), "9.9.9");
  EXPECT_STREQ(d["extensions"][0].GetString(), "binary_tensor_data");

  Response model = c.get("/v2/models/identity/versions/1");
  ASSERT_EQ(model.result_int(), 200);
  d = json(model.body());
  EXPECT_STREQ(d["name"].GetString(), "identity");
  EXPECT_STREQ(d["versions"][0].GetString(), "1");
  EXPECT_STREQ(d["platform"].GetString(), "kiln_fake");
  EXPECT_STREQ(d["inputs"][0]["datatype"].GetString(), "FP32");
  EXPECT_EQ(d["inputs"][0]["shape"][0].GetInt(), -1);

  Response config = c.get("/v2/models/identity/config");
  ASSERT_EQ(config.result_int(), 200);
  EXPECT_EQ(config.body(), R"({"name":"identity","max_batch_size":8})");  // sent as is

  EXPECT_EQ(c.get("/v2/models/identity/ready").result_int(), 200);
  Response cold = c.get("/v2/models/cold/versions/2/ready");
  EXPECT_EQ(cold.result_int(), 400);
  EXPECT_NE(error_of(cold).find("'cold' version 2 is not ready"), std::string::npos);

  Response unknown = c.get("/v2/models/nope");
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(error_of(unknown), "unknown model 'nope'");
  EXPECT_EQ(c.get("/v2/models/nope/ready").result_int(), 404);
  EXPECT_EQ(c.get("/v2/models/nope/config").result_int(), 404);
}

TEST_F(HttpFrontendTest, InferWithJsonTensors) {
  Client c(port());
  Response r = c.post("/v2/models/identity/infer",
                      R"({"id":"req-1","inputs":[
                          {"name":"x","datatype":"FP32","shape":[1,2],"data":[[0.5,-2]]},
                          {"name":"s","datatype":"BYTES","shape":[2],"data":["hi",""]}]})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(header(r, "Content-Type"), "application/json");
  EXPECT_EQ(header(r, "Inference-Header-Content-Length"), "");
  auto d = json(r.body());
  EXPECT_STREQ(d["model_name"].GetString(), "identity");
  EXPECT_STREQ(d["model_version"].GetString(), "1");
  EXPECT_STREQ(d["id"].GetString(), "req-1");
  const auto& outs = d["outputs"];
  ASSERT_EQ(outs.Size(), 2u);
  EXPECT_STREQ(outs[0]["name"].GetString(), "x");
  EXPECT_EQ(outs[0]["shape"][1].GetInt(), 2);
  EXPECT_EQ(outs[0]["data"][0].GetDouble(), 0.5);
  EXPECT_EQ(outs[0]["data"][1].GetDouble(), -2.0);
  EXPECT_STREQ(outs[1]["data"][0].GetString(), "hi");
  EXPECT_EQ(server_.infer_calls, 1);
}

TEST_F(HttpFrontendTest, InferWithBinaryTensorsBothWays) {
  // What tritonclient sends without explicit outputs: binary inputs + binary_data_output.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::string head = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2,4],
      "parameters":{"binary_data_size":32}}],"parameters":{"binary_data_output":true,
      "priority":2,"timeout":1000}})";
  Client c(port());
  Response r = c.post("/v2/models/identity/versions/1/infer", head + raw(x),
                      {{"Inference-Header-Content-Length", std::to_string(head.size())}});
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(header(r, "Content-Type"), "application/octet-stream");
  const size_t json_size = std::stoul(header(r, "Inference-Header-Content-Length"));
  auto d = json(r.body().substr(0, json_size));
  EXPECT_EQ(d["outputs"][0]["parameters"]["binary_data_size"].GetUint64(), 32u);
  EXPECT_EQ(r.body().substr(json_size), raw(x));
  const InferRequest seen = server_.last_request();
  EXPECT_EQ(seen.model_version, "1");
  EXPECT_EQ(seen.priority, 2u);
  EXPECT_EQ(seen.timeout_us, 1000u);
}

TEST_F(HttpFrontendTest, RequestedOutputsChooseJsonOrBinaryEach) {
  const std::string body = R"({"inputs":[
      {"name":"a","datatype":"INT32","shape":[2],"data":[7,8]},
      {"name":"b","datatype":"INT32","shape":[1],"data":[9]}],
      "outputs":[{"name":"b","parameters":{"binary_data":true}},{"name":"a"}]})";
  Client c(port());
  Response r = c.post("/v2/models/identity/infer", body);
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const size_t json_size = std::stoul(header(r, "Inference-Header-Content-Length"));
  auto d = json(r.body().substr(0, json_size));
  ASSERT_EQ(d["outputs"].Size(), 2u);
  EXPECT_STREQ(d["outputs"][0]["name"].GetString(), "b");
  EXPECT_EQ(d["outputs"][0]["parameters"]["binary_data_size"].GetUint64(), 4u);
  EXPECT_EQ(d["outputs"][1]["data"][1].GetInt(), 8);
  EXPECT_EQ(r.body().substr(json_size), raw(std::vector<int32_t>{9}));

  Response bad = c.post("/v2/models/identity/infer", R"({"inputs":[],"outputs":[{"name":"zz"}]})");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_EQ(error_of(bad), "unknown output 'zz'");  // the core's error, through the table
}

TEST_F(HttpFrontendTest, CompressedRequestAndResponseBodies) {
  Client c(port());
  const std::string body = json_infer(1.5f, 2.5f);
  Response g = c.post("/v2/models/identity/infer", zlib_compress(body, 16 + 15),
                      {{"Content-Encoding", "gzip"}});
  ASSERT_EQ(g.result_int(), 200) << g.body();
  EXPECT_EQ(json(g.body())["outputs"][0]["data"][1].GetDouble(), 2.5);
  Response z = c.post("/v2/models/identity/infer", zlib_compress(body, 15),
                      {{"Content-Encoding", "deflate"}, {"Accept-Encoding", "gzip"}});
  ASSERT_EQ(z.result_int(), 200);
  EXPECT_EQ(header(z, "Content-Encoding"), "gzip");
  EXPECT_EQ(json(gunzip(z.body()))["outputs"][0]["data"][0].GetDouble(), 1.5);

  Response corrupt =
      c.post("/v2/models/identity/infer", "definitely not gzip", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(corrupt.result_int(), 400);
  EXPECT_NE(error_of(corrupt).find("gzip"), std::string::npos);
  Response unknown = c.post("/v2/models/identity/infer", body, {{"Content-Encoding", "br"}});
  EXPECT_EQ(unknown.result_int(), 400);
  EXPECT_NE(error_of(unknown).find("'br'"), std::string::npos);
}

TEST_F(HttpFrontendTest, OversizedBodiesAre413) {
  {
    Client c(port());
    Response r = c.post("/v2/models/identity/infer", std::string(100 * 1024, ' '));
    EXPECT_EQ(r.result_int(), 413);
    EXPECT_NE(error_of(r).find("65536"), std::string::npos);
    EXPECT_FALSE(r.keep_alive());  // the unread body makes the connection unusable
  }
  Client c(port());
  // Small on the wire, too large once inflated: 413 too, and the connection stays usable.
  Response bomb =
      c.post("/v2/models/identity/infer", zlib_compress(std::string(200 * 1024, ' '), 16 + 15),
             {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(bomb.result_int(), 413);
  EXPECT_NE(error_of(bomb).find("inflates past"), std::string::npos);
  EXPECT_EQ(c.get("/v2/health/live").result_int(), 200);
  EXPECT_EQ(server_.infer_calls, 0);
}

TEST_F(HttpFrontendTest, ErrorsAreJsonWithTheTableStatus) {
  Client c(port());
  Response bad_json = c.post("/v2/models/identity/infer", R"({"inputs":[)");
  EXPECT_EQ(bad_json.result_int(), 400);
  EXPECT_EQ(header(bad_json, "Content-Type"), "application/json");
  EXPECT_NE(error_of(bad_json).find("invalid JSON"), std::string::npos);

  Response unknown_model = c.post("/v2/models/nope/infer", json_infer(1, 2));
  EXPECT_EQ(unknown_model.result_int(), 404);
  EXPECT_EQ(error_of(unknown_model), "unknown model 'nope'");

  Response no_route = c.get("/v2/nothing/here");
  EXPECT_EQ(no_route.result_int(), 404);
  EXPECT_NE(error_of(no_route).find("/v2/nothing/here"), std::string::npos);

  Response method = c.get("/v2/models/identity/infer");
  EXPECT_EQ(method.result_int(), 405);
  EXPECT_EQ(header(method, "Allow"), "POST");
  EXPECT_NE(error_of(method).find("GET"), std::string::npos);

  Response version = c.get("/v2/models/identity/versions/abc");
  EXPECT_EQ(version.result_int(), 400);

  for (const char* p : {"/v2/systemsharedmemory/status", "/v2/cudasharedmemory/status",
                        "/v2/logging", "/v2/trace/setting"}) {
    Response r = c.get(p);
    EXPECT_EQ(r.result_int(), 501) << p;
    EXPECT_NE(error_of(r).find("not supported"), std::string::npos) << p;
  }
  Response shm = c.post("/v2/systemsharedmemory/region/r0/register", R"({"key":"k"})");
  EXPECT_EQ(shm.result_int(), 501);
  EXPECT_TRUE(c.get("/v2/health/live").keep_alive());  // errors keep the connection

  // A HEAD reply has no body: the next reply on the connection must parse cleanly.
  c.send(bhttp::verb::head, "/v2");
  bhttp::response_parser<bhttp::string_body> head;
  head.skip(true);
  beast::flat_buffer buffer;
  bhttp::read(c.socket(), buffer, head);
  EXPECT_EQ(head.get().result_int(), 405);
  EXPECT_TRUE(head.get().body().empty());
  EXPECT_GT(std::stoul(header(head.get(), "Content-Length")), 0u);
  ASSERT_EQ(buffer.size(), 0u) << "bytes after a HEAD reply";
  EXPECT_EQ(c.get("/v2/health/live").result_int(), 200);
}

TEST_F(HttpFrontendTest, StatisticsAndRepositoryApi) {
  Client c(port());
  Response all = c.get("/v2/models/stats");
  ASSERT_EQ(all.result_int(), 200);
  auto d = json(all.body());
  EXPECT_STREQ(d["model_stats"][0]["name"].GetString(), "identity");
  EXPECT_EQ(d["model_stats"][0]["inference_stats"]["success"]["ns"].GetUint64(), 1000u);
  EXPECT_EQ(c.get("/v2/models/identity/versions/1/stats").result_int(), 200);
  EXPECT_EQ(c.get("/v2/models/nope/stats").result_int(), 404);

  Response index = c.post("/v2/repository/index", "");
  ASSERT_EQ(index.result_int(), 200);
  EXPECT_EQ(json(index.body()).Size(), 2u);
  Response ready = c.post("/v2/repository/index", R"({"ready":true})");
  EXPECT_EQ(json(ready.body()).Size(), 1u);
  EXPECT_EQ(c.post("/v2/repository/index", R"({"ready":"yes"})").result_int(), 400);

  Response load = c.post("/v2/repository/models/identity/load",
                         R"({"parameters":{"config":"{\"max_batch_size\":4}"}})");
  EXPECT_EQ(load.result_int(), 200) << load.body();
  EXPECT_EQ(server_.last_load().first, "identity");
  EXPECT_EQ(server_.last_load().second, R"({"max_batch_size":4})");
  EXPECT_EQ(c.post("/v2/repository/models/nope/load", "").result_int(), 404);
  Response files = c.post("/v2/repository/models/identity/load",
                          R"({"parameters":{"config":"{}","file:1/model.onnx":"AAAA"}})");
  EXPECT_EQ(files.result_int(), 501);
  Response unload = c.post("/v2/repository/models/identity/unload",
                           R"({"parameters":{"unload_dependents":false}})");
  EXPECT_EQ(unload.result_int(), 200);
  EXPECT_EQ(server_.last_unload(), "identity");
}

TEST_F(HttpFrontendTest, KeepAliveAndPipelinedRequestsOnOneConnection) {
  Client c(port());
  for (int i = 0; i < 3; ++i) {
    Response r = c.post("/v2/models/identity/infer", json_infer(i, -i));
    ASSERT_EQ(r.result_int(), 200);
    EXPECT_TRUE(r.keep_alive());
    EXPECT_EQ(json(r.body())["outputs"][0]["data"][0].GetDouble(), i);
    EXPECT_EQ(c.get("/v2/health/ready").result_int(), 200);
  }
  // Two requests written before reading: answered in order.
  c.send(bhttp::verb::post, "/v2/models/identity/infer", json_infer(10, 11));
  c.send(bhttp::verb::get, "/v2/models/identity/ready");
  Response first = c.receive();
  Response second = c.receive();
  EXPECT_EQ(json(first.body())["outputs"][0]["data"][1].GetDouble(), 11.0);
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_TRUE(second.body().empty());
  EXPECT_EQ(server_.infer_calls, 4);
}

TEST_F(HttpFrontendTest, ExpectContinueIsAnswered) {
  Client c(port());
  const std::string body = json_infer(3, 4);
  const std::string head =
      "POST /v2/models/identity/infer HTTP/1.1\r\nHost: x\r\n"
      "Expect: 100-continue\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n";
  net::write(c.socket(), net::buffer(head));
  std::string interim;
  net::read_until(c.socket(), net::dynamic_buffer(interim), "\r\n\r\n");
  EXPECT_EQ(interim.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << interim;
  net::write(c.socket(), net::buffer(body));
  Response r = c.receive();
  EXPECT_EQ(r.result_int(), 200);
}

TEST_F(HttpFrontendTest, ClientsThatLeaveEarlyHarmNothing) {
  {  // Leaves in the middle of its body.
    Client c(port());
    net::write(c.socket(),
               net::buffer(std::string("POST /v2/models/identity/infer HTTP/1.1\r\n"
                                       "Host: x\r\nContent-Length: 1000\r\n\r\n{\"in")));
  }
  {  // Leaves while the core still works on its request.
    server_.hold(true);
    Client c(port());
    c.send(bhttp::verb::post, "/v2/models/identity/infer", json_infer(1, 2));
    ASSERT_TRUE(eventually([&] { return server_.queued() == 1; }));
  }
  server_.hold(false);
  ASSERT_TRUE(eventually([&] { return server_.answered == 1; }));
  Client c(port());
  Response r = c.post("/v2/models/identity/infer", json_infer(5, 6));
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(server_.infer_calls, 2);
}

TEST_F(HttpFrontendTest, StopDoesNotWaitForTheCoreAndLateAnswersAreDropped) {
  server_.hold(true);
  Client c(port());
  c.send(bhttp::verb::post, "/v2/models/identity/infer", json_infer(1, 2));
  ASSERT_TRUE(eventually([&] { return server_.queued() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  frontend_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  server_.hold(false);  // the answer now arrives after the frontend stopped
  ASSERT_TRUE(eventually([&] { return server_.answered == 1; }));
  beast::error_code ec;
  bhttp::response<bhttp::string_body> res;
  beast::flat_buffer buffer;
  bhttp::read(c.socket(), buffer, res, ec);
  EXPECT_TRUE(ec) << "a stopped frontend must not answer";
  frontend_->stop();  // idempotent
}

TEST_F(HttpFrontendTest, ConcurrentClientsGetTheirOwnAnswers) {
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Client c(port());
      for (int i = 0; i < 25; ++i) {
        Response r = c.post("/v2/models/identity/infer", json_infer(t, i));
        auto d = json(r.body());
        if (r.result_int() == 200 && d["outputs"][0]["data"][0].GetDouble() == t &&
            d["outputs"][0]["data"][1].GetDouble() == i) {
          ++good;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(good, 100);
  EXPECT_EQ(server_.infer_calls, 100);
}

TEST_F(HttpFrontendTest, SecondFrontendOnTheSamePortIsUnavailable) {
  HttpOptions options;
  options.address = "127.0.0.1";
  options.port = port();
  auto second = HttpFrontend::start(server_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(std::to_string(port())), std::string::npos);
  options.address = "not-an-address";
  EXPECT_EQ(HttpFrontend::start(server_, options).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpMetricsFrontend, ServesPrometheusText) {
  FakeServer server;
  MetricsOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  auto m = MetricsFrontend::start(server, options);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  Client c((*m)->port());
  Response r = c.get("/metrics");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(header(r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body(), server.metrics_text());
  EXPECT_EQ(c.get("/v2/health/live").result_int(), 404);
  EXPECT_EQ(c.post("/metrics", "x").result_int(), 405);
}

}  // namespace
}  // namespace kiln::server::http
