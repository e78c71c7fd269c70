-- wrk script: after the run, print one machine-readable line the bench driver parses.
--   BENCH_RESULT {"requests":..,"duration_s":..,"rps":..,"p50_ms":..,"p90_ms":..,"p99_ms":..,"max_ms":..,
--                 "non_2xx_3xx":..,"connect_errors":..,"read_errors":..,"write_errors":..,"timeouts":..
--                 [,"statuses":{"201":..,"412":..}]}
-- Used alone by the GET rows: requests and headers come from the wrk command line (URL and -H);
-- no per-request Lua runs, so the script costs nothing while the load is on. bench/writes.lua
-- loads it for its done() and adds the count of each response status (`extra_result`).

done = function(summary, latency, requests)
  local duration_s = summary.duration / 1e6
  local e = summary.errors
  local extra = ""
  if extra_result ~= nil then
    extra = extra_result()
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.2f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non_2xx_3xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d%s}\n',
    summary.requests, duration_s, summary.requests / duration_s,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout, extra))
end
