-- wrk script of the ticket-creation benchmark (bench/generators.py runs it):
--   wrk -t N -c N -d 10s -s bench/create_tickets.lua http://127.0.0.1:PORT -- JOB_FILE
-- One thread per connection, each thread a client of its own: JOB_FILE holds one line per worker,
-- "<host> <port> <bearer token> <service id> <category id>", and thread i takes line i (so a
-- client's tickets never wait on one another's per-client lock, and workers spread over the
-- tickets instances as the lines say). Each request is the same POST /v1/tickets, prepared once.
-- At the end it prints one JSON line: requests, non-2xx answers, socket errors, seconds and the
-- latency percentiles in milliseconds.

local workers = {}
local next_worker = 1

local function read_job(path)
   for line in io.lines(path) do
      local host, port, token, service, category = line:match("^(%S+) (%S+) (%S+) (%S+) (%S+)$")
      workers[#workers + 1] = {host = host, port = port, token = token,
                               service = service, category = category}
   end
end

function setup(thread)
   if #workers == 0 then read_job(os.getenv("BENCH_JOB")) end
   local w = workers[next_worker]
   next_worker = next_worker + 1
   thread.addr = wrk.lookup(w.host, w.port)[1]
   thread:set("token", w.token)
   thread:set("service", w.service)
   thread:set("category", w.category)
end

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
   wrk.body = '{"service_id": ' .. service .. ', "category_id": ' .. category ..
      ', "allow_duplicate": true, "body": "Bench ticket: the site answers slowly since this morning."}'
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '{"requests": %d, "non_2xx": %d, "socket_errors": %d, "seconds": %.3f, ' ..
      '"p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
      summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
      summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000))
end
