--- :McpAuth {status|authorize|logout|paste|cancel|copy|log} [server] …
local M = {}

local function api()
  return require('mcp_auth')
end

local INFO, WARN, ERROR = vim.log.levels.INFO, vim.log.levels.WARN, vim.log.levels.ERROR

local function say(msg, level)
  vim.notify('mcp_auth: ' .. msg, level or INFO, { title = 'mcp_auth' })
end

local function fmt_expiry(expires_at)
  if type(expires_at) ~= 'number' then
    return nil
  end
  local secs = math.floor(expires_at / 1000 - os.time())
  if secs <= 0 then
    return 'token expired (refreshed on next use)'
  elseif secs < 120 then
    return ('expires in %d s'):format(secs)
  elseif secs < 2 * 3600 then
    return ('expires in %d min'):format(math.floor(secs / 60))
  else
    return ('expires in %.1f h'):format(secs / 3600)
  end
end

--- One human line (plus an optional message line) per server.
---@param s mcp_auth.ServerStatus
---@param opts? { hint?: boolean } hint: add "→ :McpAuth authorize …" (default true)
---@return string[]
function M.describe(s, opts)
  local parts = { s.server, s.state }
  local extra = {}
  if s.state == 'authorized' or s.state == 'refreshing' then
    table.insert(extra, fmt_expiry(s.expiresAt))
    if s.scopes and #s.scopes > 0 then
      table.insert(extra, 'scopes: ' .. table.concat(s.scopes, ' '))
    end
  end
  table.insert(extra, 'storage: ' .. tostring(s.storage))
  local line = ('%s  %s  %s  (%s)'):format(parts[1], parts[2], s.url or '', table.concat(extra, ', '))
  local lines = { line }
  if s.message and s.message ~= '' then
    table.insert(lines, '    ' .. s.message)
  end
  if (not opts or opts.hint ~= false) and (s.state == 'unauthenticated' or s.state == 'step_up_required') then
    table.insert(lines, '    → :McpAuth authorize ' .. s.server)
  end
  return lines
end

local function show_status(server)
  api().refresh(function(err, list)
    if err then
      say('status failed: ' .. tostring(err), ERROR)
      return
    end
    if not list or #list == 0 then
      say(
        server and ('unknown server ' .. server)
          or 'no remote MCP servers configured (setup({ servers = … }) or an mcp.json file; see :help mcp_auth-servers)',
        WARN
      )
      return
    end
    local lines = { ('mcp_auth: %s'):format(api().statusline() ~= '' and api().statusline() or 'status') }
    for _, s in ipairs(list) do
      vim.list_extend(lines, M.describe(s))
    end
    vim.notify(table.concat(lines, '\n'), INFO, { title = 'mcp_auth' })
  end, { server = server })
end

--- Calls fn(server) with the given server, or one chosen with vim.ui.select
--- among the known servers accepted by `filter` (auto-picked when only one).
local function with_server(server, prompt, filter, fn)
  if server and server ~= '' then
    fn(server)
    return
  end
  local function choose(list)
    local candidates = vim.tbl_filter(filter, list)
    if #candidates == 0 then
      candidates = list
    end
    if #candidates == 0 then
      say('no remote MCP servers configured', WARN)
      return
    end
    if #candidates == 1 then
      fn(candidates[1].server)
      return
    end
    vim.ui.select(candidates, {
      prompt = prompt,
      format_item = function(s)
        return ('%s (%s)'):format(s.server, s.state)
      end,
    }, function(choice)
      if choice then
        fn(choice.server)
      end
    end)
  end
  local cached = api().status()
  if #cached > 0 then
    choose(cached)
  else
    api().refresh(function(err, list)
      if err then
        say(tostring(err), ERROR)
        return
      end
      choose(list or {})
    end)
  end
end

--- "name: state (scopes: …)"
local function summary(name, s)
  local scopes = s.scopes and #s.scopes > 0 and (' (scopes: ' .. table.concat(s.scopes, ' ') .. ')') or ''
  return ('%s: %s%s'):format(name, s.state, scopes)
end

local function needs_auth(s)
  return s.state ~= 'authorized' and s.state ~= 'not_required' and s.state ~= 'refreshing'
end

local function authorize(server, force)
  with_server(server, 'Authorize which MCP server?', needs_auth, function(name)
    if api().is_authorizing(name) then
      local url = api().pending_url(name)
      say(
        ('authorization of %s already in progress%s (:McpAuth cancel %s to stop it)'):format(
          name,
          url and (':\n' .. url .. '\n') or '',
          name
        ),
        WARN
      )
      return
    end
    say(('authorizing %s…'):format(name))
    api().authorize(name, function(err, s)
      if err then
        if err.code == api().errors.RequestCancelled then
          say(('authorization of %s cancelled'):format(name))
        else
          say(('authorizing %s failed: %s'):format(name, tostring(err)), ERROR)
        end
        return
      end
      say(summary(name, s))
    end, { force = force })
  end)
end

local function logout(server, no_revoke)
  with_server(server, 'Log out of which MCP server?', function(s)
    return s.state == 'authorized' or s.state == 'refreshing' or s.state == 'error' or s.state == 'step_up_required'
  end, function(name)
    local opts = {}
    if no_revoke then
      opts.revoke = false
    end
    api().logout(name, function(err, result)
      if err then
        say(('logout of %s failed: %s'):format(name, tostring(err)), ERROR)
        return
      end
      say(('logged out of %s (%s)'):format(name, result.revoked and 'tokens revoked' or 'local tokens deleted, not revoked'))
    end, opts)
  end)
end

local function complete_with(name, url)
  api().complete_authorization(name, url, function(err, s)
    if err then
      say(('completing the authorization of %s failed: %s'):format(name, tostring(err)), ERROR)
      return
    end
    say(summary(name, s))
  end)
end

local function paste(server, url)
  with_server(server, 'Paste the callback URL for which MCP server?', function(s)
    return s.state == 'authorizing' or api().is_authorizing(s.server)
  end, function(name)
    if url and url ~= '' then
      complete_with(name, url)
      return
    end
    vim.ui.input({ prompt = ('Callback URL for %s (from the browser address bar): '):format(name) }, function(input)
      if input and vim.trim(input) ~= '' then
        complete_with(name, input)
      end
    end)
  end)
end

local function cancel(server)
  with_server(server, 'Cancel the authorization of which MCP server?', function(s)
    return api().is_authorizing(s.server)
  end, function(name)
    if not api().cancel(name) then
      say(('no authorization of %s in progress in this Neovim'):format(name), WARN)
    end
  end)
end

local function copy(server, register)
  with_server(server, 'Copy the authorization URL of which MCP server?', function(s)
    return api().pending_url(s.server) ~= nil
  end, function(name)
    if not api().pending_url(name) then
      say(('no authorization URL for %s (:McpAuth authorize %s starts a flow)'):format(name, name), WARN)
      return
    end
    local reg = register
    if not reg or reg == '' then
      reg = require('mcp_auth.config').options.copy_url or (vim.fn.has('clipboard') == 1 and '+' or '"')
    end
    local written = api().copy_url(name, reg)
    if written then
      say(('authorization URL of %s copied to the %s register'):format(name, written))
    else
      say(('could not write the %s register (no clipboard provider?)'):format(reg), WARN)
    end
  end)
end

local function show_log()
  local lines, path = require('mcp_auth.sidecar').log_lines()
  if #lines == 0 then
    lines = {
      ('(no output from mcp-auth-sidecar in %s yet; setup({ log_level = "debug" }) for more;'):format(path),
      ' Neovim\'s LSP client records it there when its log level is ERROR or lower, see :help lsp-log)',
    }
  end
  vim.cmd('botright new')
  local buf = vim.api.nvim_get_current_buf()
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].swapfile = false
  pcall(vim.api.nvim_buf_set_name, buf, 'mcp-auth-sidecar://log')
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
end

M.subcommands = {
  status = function(args)
    show_status(args[2])
  end,
  authorize = function(args, bang)
    authorize(args[2], bang)
  end,
  logout = function(args, bang)
    logout(args[2], bang)
  end,
  paste = function(args)
    paste(args[2], args[3])
  end,
  cancel = function(args)
    cancel(args[2])
  end,
  copy = function(args)
    copy(args[2], args[3])
  end,
  log = function()
    show_log()
  end,
}

local takes_server = { status = true, authorize = true, logout = true, paste = true, cancel = true, copy = true }

function M.run(opts)
  local args = opts.fargs
  local sub = args[1] or 'status'
  local fn = M.subcommands[sub]
  if not fn then
    local subs = vim.tbl_keys(M.subcommands)
    table.sort(subs)
    say(
      ('unknown subcommand %q; use one of: %s'):format(sub, table.concat(subs, ', ')),
      ERROR
    )
    return
  end
  fn(args, opts.bang)
end

function M.complete(arglead, cmdline, cursorpos)
  local before = cmdline:sub(1, cursorpos)
  local words = vim.split(before, '%s+', { trimempty = false })
  -- drop everything up to the command name itself
  local start = 1
  for i, w in ipairs(words) do
    if w:match('McpAuth!?$') then
      start = i
      break
    end
  end
  local n = #words - start -- position of the word being completed (1 = subcommand)
  local function filter(items)
    return vim.tbl_filter(function(x)
      return vim.startswith(x, arglead)
    end, items)
  end
  if n == 1 then
    local subs = vim.tbl_keys(M.subcommands)
    table.sort(subs)
    return filter(subs)
  elseif n == 2 and takes_server[words[start + 1]] then
    return filter(api().servers())
  end
  return {}
end

return M
