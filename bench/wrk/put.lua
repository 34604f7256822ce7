-- PUT a fixed-size body to a new path on every request (thread id plus a
-- counter), so each request creates an object, on blobsvc and nginx alike.
-- Arguments after "--": the path prefix (ending in "/") and the body size.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "report.lua")

local threads = 0   -- counted in the main Lua state, where setup() runs
local counter = 0   -- each thread has its own Lua state, hence its own count

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  prefix = args[1]
  body = string.rep("b", tonumber(args[2]))
end

function request()
  counter = counter + 1
  return wrk.format("PUT", prefix .. tid .. "-" .. counter, nil, body)
end
