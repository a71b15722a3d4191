// One rank of the "Gloo without c10d" probe for bench/collective-latency.ts: the same
// all-reduce of 64 floats as the other peers, but through Gloo's own API in the calling
// thread (no c10d work queue, no worker thread). It shows how much of a collective's time on
// this machine is Gloo's transport and how much is c10d's hand-offs between threads.
// Usage: gloo_latency RANK STORE_DIR; rank 0 prints the mean microseconds of one all-reduce.
#include <gloo/allreduce.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/transport/tcp/device.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: gloo_latency RANK STORE_DIR\n");
    return 2;
  }
  const int rank = std::atoi(argv[1]);
  gloo::transport::tcp::attr attr;
  attr.hostname = "127.0.0.1";
  auto device = gloo::transport::tcp::CreateDevice(attr);
  gloo::rendezvous::FileStore store(argv[2]);
  auto context = std::make_shared<gloo::rendezvous::Context>(rank, 2);
  context->connectFullMesh(store, device);
  // Zeros, as the other peers: sums of ones would double each time and overflow.
  std::vector<float> x(64, 0.0f);
  void (*sum)(void*, const void*, const void*, size_t) = &gloo::sum<float>;
  auto allReduce = [&]() {
    gloo::AllreduceOptions options(context);
    options.setOutput(x.data(), x.size());
    options.setReduceFunction(sum);
    gloo::allreduce(options);
  };
  for (int i = 0; i < 50; i++) allReduce();
  const int n = 1000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; i++) allReduce();
  const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count() / n;
  if (rank == 0) std::printf("%.1f\n", us);
  return 0;
}
