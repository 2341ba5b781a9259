-- Reads: the URL on wrk's command line is the request; only the report is added.
package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
require("report")
done = report_done
