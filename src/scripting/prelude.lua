-- The environment Cascade's Lua scripts run in (EVAL): the `redis` table
-- (redis.call and redis.pcall are added by the server), protected
-- globals, and pcall/xpcall that let redis.call suspend the script. A
-- script runs as a coroutine; redis.call yields the command to the server,
-- which runs it and resumes the script. Plain Lua 5.1 cannot yield across
-- its C pcall, so pcall and xpcall are rebuilt here on coroutines,
-- forwarding such yields outwards.
local G = _G
-- What the server passes in: redis.call and friends, written in Rust.
local builtins = ...
local co_create, co_resume, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.status
local select, type, error, tostring, unpack, rawget, setmetatable =
  select, type, error, tostring, unpack, rawget, setmetatable
local getinfo = debug.getinfo

local function pack(...)
  return { n = select('#', ...), ... }
end

-- redis.call and redis.pcall are C functions that yield (protected,
-- command...). A C function keeps its caller's frame even in a tail call
-- (`return redis.call(...)`), so an error can name the script's line. A
-- call's outcome comes back as the C function's return value; a failed
-- redis.call raises its error from a count hook as soon as the script
-- continues, on the line of the call.
--
-- Coroutine-based pcall yields (NESTED, ...) instead: it wants (ok, value)
-- back and delivers them to the coroutine it runs.
local NESTED = {}
local sethook = debug.sethook

-- Every 100,000 instructions: is the script to stop (SCRIPT KILL)?
local check_running = builtins.check_running
local function time_hook()
  if check_running() then
    error({ err = 'ERR Script killed by user with SCRIPT KILL...' }, 0)
  end
end
local function watch(co)
  sethook(co, time_hook, '', 100000)
end

local function deliver(co, nested, ok, ...)
  if nested then
    return pack(co_resume(co, ok, ...))
  end
  if ok then
    return pack(co_resume(co, ...))
  end
  local value = ...
  sethook(co, function()
    sethook(time_hook, '', 100000)
    -- A library error carries its text alone: it gets the position of
    -- the script line, as lua-cjson's luaL_error gives it.
    if type(value) == 'table' and rawget(value, 'lib_error') then
      local i = getinfo(2, 'Sl')
      local user = i and (i.source == '@user_script' or i.source == '@user_function')
      local where = user and i.currentline > 0 and (i.short_src .. ':' .. i.currentline .. ': ') or ''
      error(where .. value.lib_error, 0)
    end
    error(value, 0)
  end, '', 1)
  return pack(co_resume(co))
end

-- Runs f(...) in a coroutine, passing redis.call yields through.
-- Returns pack(true, results...) or pack(false, error).
local function run_protected(f, ...)
  local co = co_create(f)
  watch(co)
  local r = pack(co_resume(co, ...))
  while true do
    if not r[1] then
      return pack(false, r[2])
    end
    if co_status(co) == 'dead' then
      return r
    end
    local nested = r[2] == NESTED
    local from = nested and 3 or 2
    local back = pack(co_yield(NESTED, unpack(r, from, r.n)))
    r = deliver(co, nested, unpack(back, 1, back.n))
  end
end

local real_pcall, real_xpcall = pcall, xpcall

-- A coroutine needs a Lua function: C functions (redis.call) get a Lua
-- wrapper; what is not a function fails as the built-in pcall fails. The
-- wrapper calls through a table slot so that Lua finds no name for the
-- function ("bad argument #1 to '?'"), as under Redis's C pcall.
local function as_lua(f)
  if getinfo(f, 'S').what == 'C' then
    local slot = { f }
    return function(...)
      return slot[1](...)
    end
  end
  return f
end

-- A C function's error names the function that called it, here the
-- wrapper's line in this file ("prelude:NN: "). Under Redis's pcall the
-- caller is pcall itself, a C function, so no position: the wrapper's is
-- cut off. Its text is found by raising one error through a wrapper.
local wrapper_where
do
  local _, e = real_pcall(as_lua(error), '')
  wrapper_where = e
end
local function unwrapped(err)
  if type(err) == 'string' and err:sub(1, #wrapper_where) == wrapper_where then
    return err:sub(#wrapper_where + 1)
  end
  return err
end

local function protected(f, ...)
  local lua_f = as_lua(f)
  local r = run_protected(lua_f, ...)
  if not r[1] and lua_f ~= f then
    r[2] = unwrapped(r[2])
  end
  return r
end

-- Redis 7.0's pcall hands back an error table's `err` field (what
-- redis.call raises) as the error, a string as before 7.0; xpcall's
-- handler still gets the table.
function G.pcall(f, ...)
  if type(f) ~= 'function' then
    return real_pcall(f, ...)
  end
  local r = protected(f, ...)
  if not r[1] and type(r[2]) == 'table' then
    local e = r[2].err
    if type(e) == 'string' or type(e) == 'number' then
      r[2] = e
    end
  end
  return unpack(r, 1, r.n)
end

function G.xpcall(f, handler)
  if type(f) ~= 'function' then
    return real_xpcall(f, handler)
  end
  local r = protected(f)
  if r[1] then
    return unpack(r, 1, r.n)
  end
  return false, handler(r[2])
end

local redis = {
  call = builtins.call,
  pcall = builtins.pcall,
  sha1hex = builtins.checked_sha1hex,
  log = builtins.checked_log,
  REDIS_VERSION = builtins.version,
  REDIS_VERSION_NUM = builtins.version_num,
}
G.redis = redis

-- What redis.error_reply and redis.status_reply return for anything but
-- one string argument: an error reply, not a Lua error.
local BAD_ARGS = { err = 'ERR wrong number or type of arguments' }
local function one_string(...)
  return select('#', ...) == 1 and type((...)) == 'string'
end

-- redis.error_reply(msg): Redis reads "-CODE text" as a code and a text
-- and gives anything else the code ERR; the text loses the line breaks
-- at its ends.
function redis.error_reply(...)
  if not one_string(...) then
    return { err = BAD_ARGS.err }
  end
  local msg = ...
  if msg:sub(1, 1) ~= '-' then
    msg = '-' .. msg
  end
  local code = 'ERR'
  local space = msg:find(' ', 1, true)
  if space then
    code, msg = msg:sub(2, space - 1), msg:sub(space + 1)
  else
    msg = msg:sub(2)
  end
  msg = msg:gsub('^[\r\n]+', ''):gsub('[\r\n]+$', '')
  return { err = code .. ' ' .. msg }
end

function redis.status_reply(...)
  if not one_string(...) then
    return { err = BAD_ARGS.err }
  end
  return { ok = (...) }
end

redis.setresp = builtins.setresp

redis.acl_check_cmd = builtins.acl_check_cmd

redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL =
  0, 1, 2, 2, 3
redis.set_repl = builtins.checked_set_repl
function redis.replicate_commands() return true end
function redis.breakpoint() return false end
function redis.debug() end

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3

G.loadfile, G.dofile, G.print = nil, nil, nil

-- cjson.encode and cjson.decode are C functions (like redis.call) that
-- yield a library call; `run` answers it here without leaving Lua.
local cjson = G.cjson
cjson._NAME, cjson._VERSION = 'cjson', '2.1.0'

-- cjson.encode_keep_buffer([on]): lua-cjson's switch for reusing its
-- encode buffer. Encoding here has no such buffer, so the switch only
-- answers what it was last set to, with lua-cjson's argument checks. A C
-- function that yields a library call (15), so errors name the script's
-- line even in a tail call.
local keep_buffer = true
local function keep_buffer_switch(...)
  local n = select('#', ...)
  if n > 1 then
    return false, "bad argument #2 to 'encode_keep_buffer' (found too many arguments)"
  end
  local v = ...
  if type(v) == 'boolean' then
    keep_buffer = v
  elseif v ~= nil then
    if type(v) ~= 'string' and type(v) ~= 'number' then
      return false, "bad argument #1 to 'encode_keep_buffer' (string expected, got " .. type(v) .. ')'
    end
    v = tostring(v)
    if v ~= 'on' and v ~= 'off' then
      return false, "bad argument #1 to 'encode_keep_buffer' (invalid option '" .. v .. "')"
    end
    keep_buffer = v == 'on'
  end
  return true, keep_buffer
end
cjson.encode_keep_buffer = builtins.cjson_keep_buffer

-- redis.acl_check_cmd(command, args...): whether the user running the
-- script may run that call; Redis's errors, raised on the script's line,
-- for bad arguments or an unknown command.
local caller_may_run = builtins.caller_may_run
local function acl_check_cmd(...)
  local n = select('#', ...)
  if n == 0 then
    return false, { err = 'ERR Please specify at least one argument for this redis lib call' }
  end
  for i = 1, n do
    local a = select(i, ...)
    if type(a) ~= 'string' and type(a) ~= 'number' then
      return false, { err = 'ERR Lua redis lib command arguments must be strings or integers' }
    end
  end
  local allowed = caller_may_run(...)
  if allowed == nil then
    return false, { err = 'ERR Invalid command passed to redis.acl_check_cmd()' }
  end
  return true, allowed
end

-- redis.setresp(2|3): the protocol the script's calls are made and
-- answered in (and its booleans returned in).
local set_resp3 = builtins.set_resp3
local function setresp(...)
  if select('#', ...) ~= 1 then
    return false, { err = 'ERR redis.setresp() requires one argument.' }
  end
  local n = tonumber((...))
  if n ~= 2 and n ~= 3 then
    return false, { err = 'ERR RESP version must be 2 or 3.' }
  end
  set_resp3(n == 3)
  return true, nil
end

-- struct: C functions that yield a library call (5, 6, 7), as
-- cjson.encode does, so their errors name the script's line.
local struct = G.struct
local struct_libs = { struct.raw_pack, struct.raw_unpack, struct.raw_size }
struct.raw_pack, struct.raw_unpack, struct.raw_size = nil, nil, nil
struct.pack, struct.unpack, struct.size =
  builtins.struct_pack, builtins.struct_unpack, builtins.struct_size

-- cmsgpack: C functions that yield a library call (8 to 11) answered by the
-- server's raw functions, which return (true, results...) or (false,
-- error), so their errors name the script's line even in a tail call.
local cmsgpack = G.cmsgpack
cmsgpack._NAME, cmsgpack._VERSION = 'cmsgpack', 'lua-cmsgpack 0.4.0'
cmsgpack._COPYRIGHT = 'Copyright (C) 2012, Salvatore Sanfilippo'
cmsgpack._DESCRIPTION = 'MessagePack C implementation for Lua'
local raw_pack, raw_unpack = cmsgpack.raw_pack, cmsgpack.raw_unpack
local raw_unpack_one, raw_unpack_limit = cmsgpack.raw_unpack_one, cmsgpack.raw_unpack_limit
cmsgpack.raw_pack, cmsgpack.raw_unpack = nil, nil
cmsgpack.raw_unpack_one, cmsgpack.raw_unpack_limit = nil, nil
cmsgpack.pack, cmsgpack.unpack = builtins.cmsgpack_pack, builtins.cmsgpack_unpack
cmsgpack.unpack_one, cmsgpack.unpack_limit =
  builtins.cmsgpack_unpack_one, builtins.cmsgpack_unpack_limit

-- redis.sha1hex, redis.log and redis.set_repl: C functions that yield a
-- library call (12, 13, 14), as acl_check_cmd does, with Redis's checks.
-- Redis raises their errors as error replies (no position in the text).
local sha1 = builtins.sha1hex
local function checked_sha1hex(...)
  if select('#', ...) ~= 1 then
    return false, { err = 'ERR wrong number of arguments' }
  end
  -- lua_tolstring: a number as its text, anything else as no text.
  local v = ...
  if type(v) == 'number' then
    v = tostring(v)
  elseif type(v) ~= 'string' then
    v = ''
  end
  return true, sha1(v)
end

-- What C's (int) makes of a number: truncated toward zero.
local function to_int(n)
  if n >= 0 then
    return math.floor(n)
  end
  return math.ceil(n)
end

local write_log = builtins.log
-- redis.log(level, message...): true, or false and the error reply.
local function log_checked(...)
  local n = select('#', ...)
  if n < 2 then
    return false, { err = 'ERR redis.log() requires two arguments or more.' }
  end
  local level = tonumber((...))
  if level == nil then
    return false, { err = 'ERR First argument must be a number (log level).' }
  end
  level = to_int(level)
  if not (level >= 0 and level <= 3) then
    return false, { err = 'ERR Invalid debug level.' }
  end
  -- The strings and numbers among the rest, space-separated.
  local parts = {}
  for i = 2, n do
    local v = select(i, ...)
    if type(v) == 'string' or type(v) == 'number' then
      parts[#parts + 1] = tostring(v)
    end
  end
  write_log(level, table.concat(parts, ' '))
  return true
end

local function checked_set_repl(...)
  if select('#', ...) ~= 1 then
    return false, { err = 'ERR redis.set_repl() requires two arguments.' }
  end
  -- lua_tonumber: what is not a number is 0 (REPL_NONE).
  local flags = to_int(tonumber((...)) or 0)
  if not (flags >= 0 and flags <= 3) then
    return false, {
      err = 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.',
    }
  end
  -- Effects always replicate as the commands (see cmd::eval).
  return true
end

local libs = {
  cjson.raw_encode, cjson.raw_decode, acl_check_cmd, setresp,
  struct_libs[1], struct_libs[2], struct_libs[3], raw_pack, raw_unpack,
  raw_unpack_one, raw_unpack_limit, checked_sha1hex, log_checked, checked_set_repl,
  keep_buffer_switch,
}
cjson.raw_encode, cjson.raw_decode = nil, nil


-- Globals of this VM Redis 7.0 does not give scripts: the prelude needs
-- the debug library, and Redis removes the ones that reach outside a
-- function's environment.
local REMOVED = { debug = true, getfenv = true, setfenv = true, newproxy = true }

-- The globals scripts see: reads of unknown names and every write fail,
-- as in Redis 7.0 (its global table is read-only). Redis marks the real
-- global table read-only; stock Lua cannot, so scripts get an empty proxy
-- and rawget, rawset, next and pairs are taught to see through it.
local env = {}
local function visible(k)
  if k == '_G' then
    return env
  end
  if REMOVED[k] then
    return nil
  end
  return rawget(G, k)
end
setmetatable(env, {
  __index = function(_, k)
    local v = visible(k)
    if v == nil then
      error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
    end
    return v
  end,
  __newindex = function()
    error('Attempt to modify a readonly table', 2)
  end,
  -- Redis's global table has a metatable; this one stays out of reach.
  __metatable = {},
})

local real_rawset, real_next = rawset, next
function G.rawget(t, k)
  if t == env then
    return visible(k)
  end
  return rawget(t, k)
end
function G.rawset(t, k, v)
  if t == env then
    -- Raised by Lua itself in Redis: no script position.
    error('Attempt to modify a readonly table', 0)
  end
  return real_rawset(t, k, v)
end
-- The proxy's entries are the visible globals of G, in G's order.
local function next_visible(_, k)
  local v
  repeat
    k, v = real_next(G, k)
  until k == nil or not REMOVED[k]
  if k == '_G' then
    v = env
  end
  return k, v
end
function G.next(t, k)
  if t == env then
    return next_visible(t, k)
  end
  return real_next(t, k)
end
local real_pairs = pairs
function G.pairs(t)
  if t == env then
    return next_visible, t, nil
  end
  return real_pairs(t)
end

-- What the server calls: run(co, ...) resumes a script's coroutine and
-- tells how it stopped: 'call' (a command to run), 'done' (its result)
-- or 'error' (the error value and the script line it was raised on).
local function where(co)
  for level = 0, 40 do
    local i = getinfo(co, level, 'Sl')
    if i and (i.source == '@user_script' or i.source == '@user_function') then
      return i.currentline
    end
  end
  return nil
end

local function run(co, started, nested, ok, value)
  local r
  if not started then
    watch(co)
    r = pack(co_resume(co))
  else
    r = deliver(co, nested, ok, value)
  end
  -- Library calls (a number where a call's protected flag goes).
  while r[1] and co_status(co) ~= 'dead' do
    local from = r[2] == NESTED and 3 or 2
    local lib = libs[r[from]]
    if not lib then
      break
    end
    -- (true, results...) or (false, error). A failed call raises its
    -- text with the script's position (as luaL_error gives it), or an
    -- error reply as redis.call raises one.
    local res = pack(lib(unpack(r, from + 1, r.n)))
    local nested = r[2] == NESTED
    if res[1] then
      r = deliver(co, nested, true, unpack(res, 2, res.n))
    else
      local err = res[2]
      if type(err) ~= 'table' then
        err = { lib_error = err }
      end
      r = deliver(co, nested, false, err)
    end
  end
  if not r[1] then
    local err = r[2]
    local text = type(err) == 'table' and rawget(err, 'err')
    if type(text) == 'string' or type(text) == 'number' then
      return 'error', tostring(text), where(co)
    end
    return 'error', 'ERR ' .. tostring(err), where(co)
  end
  if co_status(co) == 'dead' then
    return 'done', r[2]
  end
  if r[2] == NESTED then
    return 'call', true, unpack(r, 3, r.n)
  end
  return 'call', false, unpack(r, 2, r.n)
end


-- Functions (FUNCTION LOAD, FCALL). A library's code runs once per VM with
-- `fenv` as its environment. While it loads, its globals are the load API
-- alone: `redis` with register_function, log and the version, as in Redis
-- 7.0; anything else is a nonexistent global. Afterwards the callbacks it
-- registered see the runtime globals: the standard libraries and a `redis`
-- without the EVAL-only helpers, and no KEYS or ARGV (a function gets its
-- keys and arguments as parameters). Globals are read-only throughout.
local function readonly()
  error('Attempt to modify a readonly table', 2)
end

local function nonexistent(k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 3)
end

local FLAG_BITS = {
  ['no-writes'] = 1,
  ['allow-oom'] = 2,
  ['allow-stale'] = 4,
  ['no-cluster'] = 8,
  ['allow-cross-slot-keys'] = 16,
}

-- The functions of the library being loaded; nil outside FUNCTION LOAD.
local registering = nil

local function reg_error(msg)
  error({ err = 'ERR ' .. msg }, 0)
end

local lower = string.lower

local function register_function(...)
  if not registering then
    reg_error('redis.register_function can only be called on FUNCTION LOAD command')
  end
  local n = select('#', ...)
  local name, callback, flags, description
  if n == 2 then
    name, callback = ...
    if type(name) ~= 'string' and type(name) ~= 'number' then
      reg_error('first argument to redis.register_function must be a string')
    end
    name = tostring(name)
    if type(callback) ~= 'function' then
      reg_error('second argument to redis.register_function must be a function')
    end
    flags = 0
  elseif n == 1 then
    local args = ...
    if type(args) ~= 'table' then
      reg_error('calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).')
    end
    flags = 0
    for k, v in G.pairs(args) do
      if type(k) ~= 'string' then
        reg_error('named argument key given to redis.register_function is not a string')
      end
      local key = lower(k)
      -- Numbers are strings to Lua (lua_isstring), as Redis checks.
      if key == 'function_name' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          reg_error('function_name argument given to redis.register_function must be a string')
        end
        name = tostring(v)
      elseif key == 'description' then
        if type(v) ~= 'string' and type(v) ~= 'number' then
          reg_error('description argument given to redis.register_function must be a string')
        end
        description = tostring(v)
      elseif key == 'callback' then
        if type(v) ~= 'function' then
          reg_error('callback argument given to redis.register_function must be a function')
        end
        callback = v
      elseif key == 'flags' then
        if type(v) ~= 'table' then
          reg_error('flags argument to redis.register_function must be a table representing function flags')
        end
        local i = 1
        while v[i] ~= nil do
          local bit = type(v[i]) == 'string' and FLAG_BITS[lower(v[i])]
          if not bit then
            reg_error('unknown flag given')
          end
          flags = G.bit.bor(flags, bit)
          i = i + 1
        end
      else
        reg_error('unknown argument given to redis.register_function')
      end
    end
    if name == nil then
      reg_error('redis.register_function must get a function name argument')
    end
    if callback == nil then
      reg_error('redis.register_function must get a callback argument')
    end
  else
    reg_error('wrong number of arguments to redis.register_function')
  end
  if #name == 0 or name:find('[^%w_]') then
    reg_error('Library names can only contain letters, numbers, or underscores(_) and must be at least one character long')
  end
  for _, f in G.ipairs(registering) do
    if f.name == name then
      reg_error('Function already exists in the library')
    end
  end
  registering[#registering + 1] =
    { name = name, callback = callback, flags = flags, description = description }
end

local function proxy(t, on_missing)
  return setmetatable({}, {
    __index = function(_, k)
      local v = t[k]
      if v == nil and on_missing then
        on_missing(k)
      end
      return v
    end,
    __newindex = readonly,
    __metatable = false,
  })
end

-- While a library loads its chunk runs outside `run`, so its redis.log
-- raises its errors itself instead of yielding.
local function load_log(...)
  local ok, err = log_checked(...)
  if not ok then
    error(err, 0)
  end
end

local load_redis = proxy({
  register_function = register_function,
  log = load_log,
  LOG_DEBUG = redis.LOG_DEBUG,
  LOG_VERBOSE = redis.LOG_VERBOSE,
  LOG_NOTICE = redis.LOG_NOTICE,
  LOG_WARNING = redis.LOG_WARNING,
  REDIS_VERSION = redis.REDIS_VERSION,
  REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
}, nonexistent)

local run_redis = proxy({
  call = redis.call,
  pcall = redis.pcall,
  log = redis.log,
  LOG_DEBUG = redis.LOG_DEBUG,
  LOG_VERBOSE = redis.LOG_VERBOSE,
  LOG_NOTICE = redis.LOG_NOTICE,
  LOG_WARNING = redis.LOG_WARNING,
  REDIS_VERSION = redis.REDIS_VERSION,
  REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM,
  setresp = redis.setresp,
  sha1hex = redis.sha1hex,
  error_reply = redis.error_reply,
  status_reply = redis.status_reply,
  set_repl = redis.set_repl,
  acl_check_cmd = redis.acl_check_cmd,
  REPL_NONE = redis.REPL_NONE,
  REPL_AOF = redis.REPL_AOF,
  REPL_SLAVE = redis.REPL_SLAVE,
  REPL_REPLICA = redis.REPL_REPLICA,
  REPL_ALL = redis.REPL_ALL,
}, nil)

-- Globals of the EVAL VM a function may not see.
local HIDDEN = { KEYS = true, ARGV = true }
for k in G.pairs(REMOVED) do
  HIDDEN[k] = true
end

local fenv = {}
setmetatable(fenv, {
  __index = function(_, k)
    if registering then
      if k == 'redis' then
        return load_redis
      end
      nonexistent(k)
    end
    if k == '_G' then
      return fenv
    end
    if k == 'redis' then
      return run_redis
    end
    local v = nil
    if not HIDDEN[k] then
      v = rawget(G, k)
    end
    if v == nil then
      nonexistent(k)
    end
    return v
  end,
  __newindex = readonly,
  __metatable = false,
})

-- FUNCTION LOAD past this many milliseconds fails (Redis's 500 ms).
local load_timed_out = builtins.load_timed_out
local function load_hook()
  if load_timed_out() then
    error({ err = 'ERR FUNCTION LOAD timeout' }, 0)
  end
end

-- Runs a library's compiled chunk (its environment is `fenv`): true and
-- the list of {name, callback, flags, description} it registered, or
-- false and the error reply's text.
local function load_library(chunk)
  registering = {}
  local co = co_create(chunk)
  sethook(co, load_hook, '', 100000)
  local ok, err = co_resume(co)
  local got = registering
  registering = nil
  if not ok then
    if type(err) == 'table' and type(rawget(err, 'err')) == 'string' then
      return false, err.err
    end
    return false, 'ERR ' .. tostring(err)
  end
  if co_status(co) ~= 'dead' then
    return false, 'ERR attempt to yield across metamethod/C-call boundary'
  end
  return true, got
end

-- The body of an FCALL's coroutine: the callback with its keys and args.
local function bind(callback, keys, args)
  return function()
    return callback(keys, args)
  end
end

return env, run, { env = fenv, load = load_library, bind = bind }
