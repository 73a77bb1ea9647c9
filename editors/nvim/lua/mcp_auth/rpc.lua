--- A JSON-RPC connection to a child process, on Neovim's own LSP transport
--- (vim.lsp.rpc: the process, LSP framing, JSON). What this module adds is
--- what the plugin needs on top of it:
---
--- - every request gets exactly one callback `cb(err, result)`: the answer;
---   or a -32800 error when the request was cancelled (vim.lsp.rpc drops
---   those answers); or a PROCESS_EXITED error when the process exits first
---   (vim.lsp.rpc forgets the callbacks);
--- - the process id (vim.lsp.rpc does not expose it) for :checkhealth and a
---   last-resort kill;
--- - how many requests are still waiting (for a clean shutdown).
---
--- Every callback (responses, notifications, server requests, exit) runs on
--- the main loop, in the order the messages arrived.
---
--- The process's stderr: vim.lsp.rpc writes it to the LSP log
--- (vim.lsp.log.get_filename(), at ERROR level) and offers no hook;
--- `stderr_lines()` reads it back from there. See docs/DECISIONS.md.
local M = {}

---@class mcp_auth.RpcError
---@field code integer
---@field message string
---@field data any

---@class mcp_auth.RpcHandlers
---@field notification? fun(method: string, params: any)
---@field request? fun(method: string, params: any): any, mcp_auth.RpcError?  result, err
---@field exit? fun(code: integer, signal: integer)

--- Error code used locally for "the process went away before answering".
M.PROCESS_EXITED = -32099
--- JSON-RPC / LSP RequestCancelled.
M.REQUEST_CANCELLED = -32800

---@class mcp_auth.Rpc
---@field client vim.lsp.rpc.PublicClient
---@field pid integer?
---@field cmd string[]
---@field private waiting table<integer, { method: string, cb: fun(err: mcp_auth.RpcError?, result: any) }>
---@field private closed boolean
---@field private handlers mcp_auth.RpcHandlers
local Rpc = {}
Rpc.__index = Rpc

local function child_pids()
  local ok, pids = pcall(vim.api.nvim_get_proc_children, vim.fn.getpid())
  local set = {}
  for _, p in ipairs(ok and pids or {}) do
    set[p] = true
  end
  return set
end

---@param cmd string[]
---@param opts { env?: table<string,string>, cwd?: string, handlers: mcp_auth.RpcHandlers }
---@return mcp_auth.Rpc? rpc, string? err
function M.start(cmd, opts)
  local self = setmetatable({
    cmd = cmd,
    waiting = {},
    closed = false,
    handlers = opts.handlers or {},
  }, Rpc)
  local before = child_pids()
  local ok, client = pcall(vim.lsp.rpc.start, cmd, {
    -- vim.lsp.rpc schedules notifications and response callbacks itself.
    notification = function(method, params)
      if self.handlers.notification then
        self.handlers.notification(method, params)
      end
    end,
    server_request = function(method, params)
      if self.handlers.request then
        return self.handlers.request(method, params)
      end
      return nil, { code = -32601, message = 'method not found: ' .. tostring(method) }
    end,
    -- Called from the process's exit callback (a fast event).
    on_exit = function(code, signal)
      vim.schedule(function()
        self:_on_exit(code, signal)
      end)
    end,
    on_error = function(code, err)
      local name = vim.lsp.rpc.client_errors[code] or tostring(code)
      vim.notify(('mcp_auth: %s from mcp-auth-sidecar: %s'):format(name, tostring(err)), vim.log.levels.WARN)
    end,
  }, { env = opts.env, cwd = opts.cwd })
  if not ok then
    return nil, tostring(client)
  end
  self.client = client
  -- vim.system spawned it synchronously: the one new child is ours.
  local new = {}
  for p in pairs(child_pids()) do
    if not before[p] then
      table.insert(new, p)
    end
  end
  self.pid = #new == 1 and new[1] or nil
  return self
end

---@private
function Rpc:_finish(id, err, result)
  local entry = self.waiting[id]
  if not entry then
    return
  end
  self.waiting[id] = nil
  local ok, e = pcall(entry.cb, err, result)
  if not ok then
    vim.notify(('mcp_auth: error in the callback of %s: %s'):format(entry.method, tostring(e)), vim.log.levels.ERROR)
  end
end

---@private
function Rpc:_on_exit(code, signal)
  if self.closed then
    return
  end
  self.closed = true
  local ids = vim.tbl_keys(self.waiting)
  table.sort(ids)
  for _, id in ipairs(ids) do
    self:_finish(id, { code = M.PROCESS_EXITED, message = 'mcp-auth-sidecar exited before answering' }, nil)
  end
  if self.handlers.exit then
    self.handlers.exit(code, signal)
  end
end

--- Sends a request. `cb(err, result)` runs on the main loop, exactly once.
---@param method string
---@param params any
---@param cb fun(err: mcp_auth.RpcError?, result: any)
---@return integer? id
function Rpc:request(method, params, cb)
  local function fail(message)
    vim.schedule(function()
      cb({ code = M.PROCESS_EXITED, message = message }, nil)
    end)
  end
  if self:is_closed() then
    fail('mcp-auth-sidecar is not running')
    return nil
  end
  local id
  local sent
  sent, id = self.client.request(method, params, function(err, result)
    self:_finish(id, err, result)
  end, function(reply_id)
    -- An answer arrived. vim.lsp.rpc schedules its callback right after this
    -- one; when it never comes, the answer was RequestCancelled.
    vim.schedule(function()
      self:_finish(reply_id, { code = M.REQUEST_CANCELLED, message = 'request cancelled' }, nil)
    end)
  end)
  if not sent or not id then
    fail('could not write to mcp-auth-sidecar')
    return nil
  end
  self.waiting[id] = { method = method, cb = cb }
  return id
end

---@param method string
---@param params any
---@return boolean sent
function Rpc:notify(method, params)
  if self:is_closed() then
    return false
  end
  return self.client.notify(method, params)
end

--- Asks the peer to cancel request `id` (`$/cancelRequest`); its callback
--- then gets a -32800 error (or the answer, if that came first).
function Rpc:cancel(id)
  return self:notify('$/cancelRequest', { id = id })
end

--- Number of requests still waiting for an answer, not counting `except`.
---@param except? table<string, boolean> methods to ignore
---@return integer
function Rpc:pending(except)
  local n = 0
  for _, entry in pairs(self.waiting) do
    if not (except and except[entry.method]) then
      n = n + 1
    end
  end
  return n
end

function Rpc:is_closed()
  return self.closed or self.client.is_closing()
end

--- SIGTERM (the sidecar finishes a refresh or logout in progress, then exits).
function Rpc:terminate()
  pcall(self.client.terminate)
end

--- SIGKILL, the last resort.
function Rpc:kill()
  if self.pid then
    pcall(vim.uv.kill, self.pid, 'sigkill')
  end
end

local escapes = { a = '\a', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t', v = '\v' }

--- Reverses vim.inspect() of a string.
local function uninspect(s)
  local q = s:sub(1, 1)
  if #s < 2 or (q ~= '"' and q ~= "'") or s:sub(-1) ~= q then
    return s
  end
  s = s:sub(2, -2)
  local out, i = {}, 1
  while i <= #s do
    local c = s:sub(i, i)
    if c == '\\' and i < #s then
      local digits = s:match('^%d%d?%d?', i + 1)
      if digits then
        table.insert(out, string.char(tonumber(digits) % 256))
        i = i + 1 + #digits
      else
        local n = s:sub(i + 1, i + 1)
        table.insert(out, escapes[n] or n)
        i = i + 2
      end
    else
      table.insert(out, c)
      i = i + 1
    end
  end
  return table.concat(out)
end

--- What the processes started with the programs `programs` wrote to stderr,
--- read back from the LSP log (from byte `offset` on). Empty when the LSP
--- log level is above ERROR.
---@param programs table<string, boolean> cmd[1] of each process started
---@param offset? integer
---@return string[] lines, string path
function M.stderr_lines(programs, offset)
  local path = vim.lsp.log.get_filename()
  local lines = {}
  local f = io.open(path, 'rb')
  if not f then
    return lines, path
  end
  if offset and offset > 0 then
    f:seek('set', offset)
  end
  local partial = ''
  for line in f:lines() do
    local program, chunk = line:match('\t"rpc"\t(.-)\t"stderr"\t(.*)$')
    if program and program:sub(1, 1) == '{' then
      -- the whole command list (older vim.lsp.rpc): its first string
      program = program:match('^{%s*(%b"")') or program
    end
    if program and programs[uninspect(program)] then
      local parts = vim.split(partial .. uninspect(chunk), '\n', { plain = true })
      partial = table.remove(parts)
      vim.list_extend(lines, parts)
    end
  end
  f:close()
  if partial ~= '' then
    table.insert(lines, partial)
  end
  return lines, path
end

return M
