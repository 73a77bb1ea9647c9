--- JSON-RPC 2.0 over a child process's stdio with LSP base-protocol framing
--- (`Content-Length: N\r\n\r\n<body>`), built on vim.system().
---
--- Every callback (responses, notifications, server requests, exit) runs on
--- the main loop (vim.schedule), in the order the messages arrived, so
--- handlers may call any Neovim API.
local M = {}

---@class mcp_auth.RpcError
---@field code integer
---@field message string
---@field data any

---@class mcp_auth.RpcHandlers
---@field notification? fun(method: string, params: any)
---@field request? fun(method: string, params: any): any, mcp_auth.RpcError?  result, err
---@field exit? fun(code: integer, signal: integer)
---@field stderr? fun(chunk: string)

---@class mcp_auth.Rpc
---@field proc vim.SystemObj
---@field pid integer
---@field private next_id integer
---@field private callbacks table<integer, fun(err: mcp_auth.RpcError?, result: any)>
---@field private methods table<integer, string>
---@field private buffer string
---@field private closed boolean
---@field private exited boolean
---@field private handlers mcp_auth.RpcHandlers
local Rpc = {}
Rpc.__index = Rpc

--- Error code used locally for "the process went away before answering".
M.PROCESS_EXITED = -32099

local function json_decode(s)
  return vim.json.decode(s, { luanil = { object = true, array = true } })
end

---@param cmd string[]
---@param opts { env?: table<string,string>, cwd?: string, handlers: mcp_auth.RpcHandlers }
---@return mcp_auth.Rpc? rpc, string? err
function M.start(cmd, opts)
  local self = setmetatable({
    next_id = 0,
    callbacks = {},
    methods = {},
    buffer = '',
    closed = false,
    handlers = opts.handlers or {},
  }, Rpc)

  local ok, proc = pcall(vim.system, cmd, {
    stdin = true,
    env = opts.env,
    cwd = opts.cwd,
    stdout = function(err, data)
      if err or not data then
        return
      end
      self:_on_stdout(data)
    end,
    stderr = function(_, data)
      if data and self.handlers.stderr then
        vim.schedule(function()
          self.handlers.stderr(data)
        end)
      end
    end,
  }, function(out)
    vim.schedule(function()
      self:_on_exit(out.code, out.signal)
    end)
  end)
  if not ok then
    return nil, tostring(proc)
  end
  self.proc = proc
  self.pid = proc.pid
  return self
end

---@private
function Rpc:_on_stdout(data)
  self.buffer = self.buffer .. data
  while true do
    local header_end = self.buffer:find('\r\n\r\n', 1, true)
    if not header_end then
      return
    end
    local header = self.buffer:sub(1, header_end - 1)
    local length = tonumber(header:lower():match('content%-length:%s*(%d+)'))
    if not length then
      -- Unrecoverable framing error: drop what we have and resynchronise on
      -- the next header.
      self.buffer = self.buffer:sub(header_end + 4)
      vim.schedule(function()
        vim.notify('mcp_auth: malformed header from sidecar: ' .. header, vim.log.levels.WARN)
      end)
    else
      local body_start = header_end + 4
      if #self.buffer < body_start + length - 1 then
        return
      end
      local body = self.buffer:sub(body_start, body_start + length - 1)
      self.buffer = self.buffer:sub(body_start + length)
      vim.schedule(function()
        self:_dispatch(body)
      end)
    end
  end
end

---@private
function Rpc:_send(msg)
  if self.closed then
    return false
  end
  local body = vim.json.encode(msg)
  local ok = pcall(self.proc.write, self.proc, ('Content-Length: %d\r\n\r\n%s'):format(#body, body))
  return ok
end

---@private
function Rpc:_dispatch(body)
  local ok, msg = pcall(json_decode, body)
  if not ok or type(msg) ~= 'table' then
    vim.notify('mcp_auth: sidecar sent invalid JSON: ' .. body:sub(1, 200), vim.log.levels.WARN)
    return
  end
  if msg.method and msg.id ~= nil then
    -- server -> client request
    local result, err
    local handler = self.handlers.request
    if handler then
      local hok, r, e = pcall(handler, msg.method, msg.params)
      if hok then
        result, err = r, e
      else
        err = { code = -32603, message = tostring(r) }
      end
    else
      err = { code = -32601, message = 'method not found: ' .. msg.method }
    end
    if err then
      self:_send({ jsonrpc = '2.0', id = msg.id, error = err })
    else
      self:_send({ jsonrpc = '2.0', id = msg.id, result = result == nil and vim.NIL or result })
    end
  elseif msg.method then
    if self.handlers.notification then
      local nok, e = pcall(self.handlers.notification, msg.method, msg.params)
      if not nok then
        vim.notify('mcp_auth: error handling ' .. msg.method .. ': ' .. tostring(e), vim.log.levels.ERROR)
      end
    end
  elseif msg.id ~= nil then
    local cb = self.callbacks[msg.id]
    self.callbacks[msg.id] = nil
    if cb then
      local cok, e = pcall(cb, msg.error, msg.result)
      if not cok then
        vim.notify('mcp_auth: error in response callback: ' .. tostring(e), vim.log.levels.ERROR)
      end
    end
  end
end

---@private
function Rpc:_on_exit(code, signal)
  if self.exited then
    return
  end
  self.exited = true
  self.closed = true
  local callbacks = self.callbacks
  self.callbacks = {}
  for _, cb in pairs(callbacks) do
    pcall(cb, { code = M.PROCESS_EXITED, message = 'mcp-auth-sidecar exited before answering' }, nil)
  end
  if self.handlers.exit then
    self.handlers.exit(code, signal)
  end
end

--- Sends a request. `cb(err, result)` runs on the main loop.
---@param method string
---@param params any
---@param cb fun(err: mcp_auth.RpcError?, result: any)
---@return integer? id
function Rpc:request(method, params, cb)
  if self.closed then
    vim.schedule(function()
      cb({ code = M.PROCESS_EXITED, message = 'mcp-auth-sidecar is not running' }, nil)
    end)
    return nil
  end
  self.next_id = self.next_id + 1
  local id = self.next_id
  self.methods[id] = method
  self.callbacks[id] = function(err, result)
    self.methods[id] = nil
    return cb(err, result)
  end
  local msg = { jsonrpc = '2.0', id = id, method = method }
  if params ~= nil then
    msg.params = params
  end
  if not self:_send(msg) then
    self.callbacks[id] = nil
    vim.schedule(function()
      cb({ code = M.PROCESS_EXITED, message = 'could not write to mcp-auth-sidecar' }, nil)
    end)
    return nil
  end
  return id
end

---@param method string
---@param params any
function Rpc:notify(method, params)
  local msg = { jsonrpc = '2.0', method = method }
  if params ~= nil then
    msg.params = params
  end
  return self:_send(msg)
end

--- Asks the peer to cancel request `id` (`$/cancelRequest`).
function Rpc:cancel(id)
  return self:notify('$/cancelRequest', { id = id })
end

--- Number of requests still waiting for an answer, not counting `except`.
---@param except? table<string, boolean> methods to ignore
---@return integer
function Rpc:pending(except)
  local n = 0
  for _, method in pairs(self.methods) do
    if not (except and except[method]) then
      n = n + 1
    end
  end
  return n
end

function Rpc:is_closed()
  return self.closed
end

--- Closes stdin (the sidecar exits on EOF).
function Rpc:close_stdin()
  pcall(self.proc.write, self.proc, nil)
end

---@param signal? integer|string
function Rpc:kill(signal)
  pcall(self.proc.kill, self.proc, signal or 'sigterm')
end

return M
