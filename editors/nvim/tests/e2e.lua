-- End-to-end test of the mcp_auth plugin against the real mcp-auth-sidecar and
-- the real @modelcontextprotocol/sdk example server (--oauth). Started by
-- tests/run.sh, which provides:
--   MCP_AUTH_SIDECAR_BIN  the sidecar binary (default: mcp-auth-sidecar on PATH)
--   MCP_URL               the protected MCP endpoint (http://localhost:<port>/mcp)
--   MCP_AUTH_BROWSER      JSON array: a "browser" command that follows redirects
--   MCP_TEST_NODE, MCP_TEST_FOLLOW  the same command's parts (for vim.ui.open)
--   HOME, MCP_AUTH_SIDECAR_HOME     isolated temporary directories
-- Run: nvim --headless -u NONE -l editors/nvim/tests/e2e.lua
-- Last line: "N passed, M failed"; exit status 1 on any failure.

local source = debug.getinfo(1, 'S').source:sub(2)
local plugin_dir = vim.fs.dirname(vim.fs.dirname(vim.fn.fnamemodify(source, ':p')))
vim.opt.runtimepath:prepend(plugin_dir)
vim.cmd('runtime plugin/mcp_auth.lua')

local BIN = os.getenv('MCP_AUTH_SIDECAR_BIN') or 'mcp-auth-sidecar'
local MCP_URL = os.getenv('MCP_URL')
local BROWSER = os.getenv('MCP_AUTH_BROWSER') and vim.json.decode(os.getenv('MCP_AUTH_BROWSER'))
local NODE = os.getenv('MCP_TEST_NODE')
local FOLLOW = os.getenv('MCP_TEST_FOLLOW')
local SERVER = 'sdk-example'

local AUTHORIZE_MS = 45000
local REQUEST_MS = 15000

local secrets = {} -- access tokens and authorization codes seen; must never be in the sidecar's log
local captured = {} -- statusline strings, printed in the summary

local harness = dofile(debug.getinfo(1, 'S').source:sub(2):match('(.*/)') .. 'harness.lua')
local out, check = harness.out, harness.check

local function finish()
  pcall(function()
    require('mcp_auth').stop()
  end)
  local ok_log, lines = pcall(function()
    return require('mcp_auth.sidecar').log_lines()
  end)
  if ok_log then
    local leaked = {}
    for _, secret in ipairs(secrets) do
      for _, l in ipairs(lines) do
        if l:find(secret, 1, true) then
          table.insert(leaked, l)
        end
      end
    end
    check('no access token or authorization code appears in the sidecar log (' .. #lines .. ' lines)', #leaked == 0, leaked)
    out('')
    out('sidecar log lines at WARN/ERROR level (all sidecar processes of this run):')
    for _, l in ipairs(lines) do
      if l:find(' WARN ', 1, true) or l:find(' ERROR ', 1, true) then
        out('  ' .. l)
      end
    end
  end
  out('')
  for _, c in ipairs(captured) do
    out(('statusline %-28s %q'):format(c[1] .. ':', c[2]))
  end
  -- :cquit, not os.exit(): Neovim's own exit removes its temp folder
  -- ($TMPDIR/nvim.<user>/…, with its server socket); os.exit() left it.
  vim.cmd('cquit! ' .. (harness.summary() and 0 or 1))
end

if not (MCP_URL and BROWSER and NODE and FOLLOW) then
  check('environment from run.sh (MCP_URL, MCP_AUTH_BROWSER, MCP_TEST_NODE, MCP_TEST_FOLLOW)', false)
  finish()
end

-- Record every vim.notify (and show it).
local notes = {}
local real_notify = vim.notify
local function recording_notify(msg, level)
  table.insert(notes, { msg = tostring(msg), level = level or vim.log.levels.INFO })
  out(('  [notify %s] %s'):format(
    ({ [0] = 'TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR' })[level or 2] or tostring(level),
    tostring(msg):gsub('\n', '\n    ')
  ))
end
vim.notify = recording_notify
local function notes_matching(pattern, plain)
  local found = {}
  for _, n in ipairs(notes) do
    if n.msg:find(pattern, 1, plain) then
      table.insert(found, n)
    end
  end
  return found
end

local function wait(ms, pred)
  return vim.wait(ms, pred, 20)
end

--- Waits for an async API call: fn(cb) → the callback's arguments.
local function await(ms, fn)
  local done, res = false, nil
  fn(function(...)
    done, res = true, { ... }
  end)
  if not wait(ms, function()
    return done
  end) then
    return nil, 'timed out'
  end
  return unpack(res, 1, 3)
end

local function statusline_becomes(expected, ms)
  local ok = wait(ms, function()
    return require('mcp_auth').statusline() == expected
  end)
  return ok, require('mcp_auth').statusline()
end

--- A real MCP initialize POST with curl; returns status, headers (lower-case), body.
local function mcp_initialize(token)
  local body = vim.json.encode({
    jsonrpc = '2.0',
    id = 1,
    method = 'initialize',
    params = {
      protocolVersion = '2025-06-18',
      capabilities = vim.empty_dict(),
      clientInfo = { name = 'mcp-auth-nvim-e2e', version = '1' },
    },
  })
  local args = {
    'curl', '-sS', '--max-time', '10', '-D', '-', '-X', 'POST', MCP_URL,
    '-H', 'Content-Type: application/json',
    '-H', 'Accept: application/json, text/event-stream',
    '--data-binary', body,
  }
  if token then
    vim.list_extend(args, { '-H', 'Authorization: Bearer ' .. token })
  end
  local r = vim.system(args, { text = true }):wait(15000)
  if r.code ~= 0 then
    return nil, {}, r.stderr
  end
  local text = r.stdout:gsub('\r\n', '\n')
  local head, rest = text:match('^(.-)\n\n(.*)$')
  head = head or text
  local status = tonumber(head:match('^HTTP/%S+ (%d+)'))
  local headers = {}
  for line in head:gmatch('[^\n]+') do
    local k, v = line:match('^([^:]+):%s*(.*)$')
    if k then
      headers[k:lower()] = v
    end
  end
  return status, headers, rest or ''
end

--- The JSON-RPC message with id 1 in a JSON or SSE body.
local function rpc_message(headers, body)
  if (headers['content-type'] or ''):find('text/event-stream', 1, true) then
    for line in body:gmatch('[^\n]+') do
      local data = line:match('^data:%s*(.*)$')
      if data then
        local ok, msg = pcall(vim.json.decode, data)
        if ok and msg.id == 1 then
          return msg
        end
      end
    end
    return nil
  end
  local ok, msg = pcall(vim.json.decode, body)
  return ok and msg or nil
end

local function token_accepted(token, label)
  table.insert(secrets, token)
  local status, headers, body = mcp_initialize(token)
  check(label .. ': MCP initialize with the token → HTTP 200', status == 200, ('HTTP %s %s'):format(status, body))
  local msg = status == 200 and rpc_message(headers, body) or nil
  check(
    label .. ': initialize result from the MCP server',
    msg and msg.result and msg.result.serverInfo and type(msg.result.protocolVersion) == 'string',
    body
  )
  check(label .. ': the server opened a session (mcp-session-id)', headers['mcp-session-id'] ~= nil, headers)
end

local function checkhealth(label)
  local lines = harness.checkhealth(label)
  local text = table.concat(lines, '\n')
  local errors = vim.tbl_filter(function(l)
    return l:find('ERROR') ~= nil
  end, lines)
  check(label .. ': :checkhealth mcp_auth reports no ERROR', #errors == 0, table.concat(errors, '\n'))
  check(label .. ': checkhealth shows the sidecar version', text:find('version: mcp-auth-sidecar ', 1, true) ~= nil, text)
  check(label .. ': checkhealth shows the storage mode', text:find('storage: file', 1, true) ~= nil, text)
  check(label .. ': checkhealth lists the server', text:find(SERVER, 1, true) ~= nil, text)
  check(label .. ': checkhealth says where the sidecar\'s log goes (the LSP log)',
    text:find(vim.lsp.log.get_filename(), 1, true) ~= nil and text:find(':McpAuth log shows it', 1, true) ~= nil, text)
  return text
end

local mcp_auth = require('mcp_auth')
local sidecar = require('mcp_auth.sidecar')

local changes = 0
local notified_states = {} -- states seen in mcp/authStatusChanged notifications
sidecar.on('mcp/authStatusChanged', function(p)
  if p and p.server == SERVER then
    table.insert(notified_states, p.state)
  end
end)
local requests_sent = 0
local real_request = sidecar.request
sidecar.request = function(...)
  requests_sent = requests_sent + 1
  return real_request(...)
end
vim.api.nvim_create_autocmd('User', {
  pattern = 'McpAuthStatusChanged',
  callback = function()
    changes = changes + 1
  end,
})

local base_opts = {
  cmd = { BIN },
  servers = { [SERVER] = { url = MCP_URL } },
  storage = 'file',
  browser = BROWSER,
  discover_config_files = false,
}

local ok_run, err_run = xpcall(function()
  -------------------------------------------------------------------------
  out('# setup: options, lazy start, completion')
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { no_such_option = true }))
  check(
    'setup() reports unknown keys with vim.notify',
    #notes_matching('unknown option(s) ignored: no_such_option', true) == 1,
    notes
  )
  check('sidecar not started by setup() (lazy)', sidecar.phase() == 'stopped', sidecar.phase())
  check('McpAuthOk links to DiagnosticOk', vim.api.nvim_get_hl(0, { name = 'McpAuthOk' }).link == 'DiagnosticOk')
  check('McpAuthWarn links to DiagnosticWarn', vim.api.nvim_get_hl(0, { name = 'McpAuthWarn' }).link == 'DiagnosticWarn')
  check('McpAuthError links to DiagnosticError', vim.api.nvim_get_hl(0, { name = 'McpAuthError' }).link == 'DiagnosticError')
  local subs = vim.fn.getcompletion('McpAuth ', 'cmdline')
  check(
    ':McpAuth completes subcommands',
    vim.tbl_contains(subs, 'status') and vim.tbl_contains(subs, 'authorize') and vim.tbl_contains(subs, 'logout')
      and vim.tbl_contains(subs, 'paste'),
    subs
  )
  local names = vim.fn.getcompletion('McpAuth authorize sdk', 'cmdline')
  check(':McpAuth authorize completes server names', vim.deep_equal(names, { SERVER }), names)
  check('completion does not start the sidecar', sidecar.phase() == 'stopped', sidecar.phase())

  -------------------------------------------------------------------------
  out('# autostart: a rendered status line shows the configured server\'s state without any command')
  local requests_before_render = requests_sent
  -- the native status line of the README
  vim.o.statusline = "%f %m%=%{%v:lua.require'mcp_auth'.statusline({'highlight': v:true})%} %l:%c"
  local first = vim.api.nvim_eval_statusline(vim.o.statusline, { maxwidth = 200 }).str
  check('the first render is not blank: "MCP ?" for the configured server', first:find('MCP ?', 1, true) ~= nil, first)
  check('the render itself sent no request and did not block (the start is scheduled)',
    requests_sent == requests_before_render and sidecar.phase() == 'stopped', { requests_sent - requests_before_render, sidecar.phase() })
  local rendered_ok = wait(REQUEST_MS, function()
    return vim.api.nvim_eval_statusline(vim.o.statusline, { maxwidth = 200 }).str:find('MCP needs auth', 1, true) ~= nil
  end)
  local rendered = vim.api.nvim_eval_statusline(vim.o.statusline, { maxwidth = 200 }).str
  table.insert(captured, { 'first render (autostart)', mcp_auth.statusline() })
  check('…then "MCP needs auth" from the sidecar\'s probe, with no command run', rendered_ok, rendered)
  check('the render started the sidecar', sidecar.phase() == 'running' and sidecar.pid() ~= nil, sidecar.phase())
  local lualine = require('mcp_auth.lualine')
  check('the lualine component: shown, "MCP needs auth", McpAuthWarn',
    lualine.cond() == true and lualine[1]() == 'MCP needs auth' and lualine.color() == 'McpAuthWarn',
    { lualine.cond(), lualine[1](), lualine.color() })
  vim.o.statusline = ''

  -------------------------------------------------------------------------
  out('# before authorization')
  local st401 = mcp_initialize(nil)
  check('MCP server refuses an unauthenticated initialize (401)', st401 == 401, st401)
  vim.cmd('McpAuth status')
  local ok, line = statusline_becomes('MCP needs auth', REQUEST_MS)
  table.insert(captured, { 'before authorization', line })
  out(('  statusline before authorization: %q'):format(line))
  check('statusline is "MCP needs auth" after :McpAuth status (probe)', ok, line)
  check('sidecar started on first use', sidecar.phase() == 'running' and sidecar.pid() ~= nil, sidecar.phase())
  check('statusline highlight is McpAuthWarn', mcp_auth.highlight() == 'McpAuthWarn', mcp_auth.highlight())
  local s = mcp_auth.status(SERVER)
  check('cached state is unauthenticated', s and s.state == 'unauthenticated', s)
  local terr, tok = await(REQUEST_MS, function(cb)
    mcp_auth.token(SERVER, cb)
  end)
  check('token() before authorization: cb(err) with err.code 1001', tok == nil and type(terr) == 'table' and terr.code == 1001, { terr, tok })
  check('the error object: tostring(err) is its message', terr and type(terr.message) == 'string' and tostring(terr) == terr.message, terr)
  check('the error object carries the ServerStatus as data', terr and type(terr.data) == 'table' and terr.data.server == SERVER, terr)
  local herr, hdrs = await(REQUEST_MS, function(cb)
    mcp_auth.headers(SERVER, cb)
  end)
  check('headers() before authorization: cb(err) with err.code 1001', hdrs == nil and herr and herr.code == 1001, { herr, hdrs })
  local shdrs, sherr = mcp_auth.headers_sync(SERVER, REQUEST_MS)
  check('headers_sync() before authorization returns nil, err', shdrs == nil and sherr and sherr.code == 1001, { shdrs, sherr })

  -------------------------------------------------------------------------
  out('# :McpAuth authorize (browser command from the browser option)')
  local changes_before = changes
  vim.fn.setreg('"', 'the user\'s yank')
  vim.cmd('McpAuth authorize ' .. SERVER)
  ok, line = statusline_becomes('MCP ok', AUTHORIZE_MS)
  table.insert(captured, { 'after authorization', line })
  out(('  statusline after authorization: %q'):format(line))
  check(':McpAuth authorize completes and the statusline becomes "MCP ok"', ok, line)
  check(
    'authorize reported success',
    wait(REQUEST_MS, function()
      return #notes_matching(SERVER .. ': authorized', true) > 0
    end),
    notes
  )
  check('User McpAuthStatusChanged autocmds fired', changes > changes_before, changes)
  check('statusline({highlight=true}) uses McpAuthOk', mcp_auth.statusline({ highlight = true }) == '%#McpAuthOk#MCP ok%*',
    mcp_auth.statusline({ highlight = true }))
  local url = mcp_auth.pending_url(SERVER)
  check('mcp/authorizationPending delivered the URL', type(url) == 'string' and url:match('^http://localhost:%d+/authorize%?') ~= nil, url)
  check('the unnamed register is untouched after a pending authorization', vim.fn.getreg('"') == "the user's yank", vim.fn.getreg('"'))
  check('the URL was shown with vim.notify', url ~= nil and #notes_matching(url, true) > 0)
  check('the notification says how to copy it', #notes_matching(':McpAuth copy ' .. SERVER .. ' copies it', true) > 0)
  s = mcp_auth.status(SERVER)
  check('cached status: authorized, storage file', s and s.state == 'authorized' and s.storage == 'file', s)

  local err, token, result = await(REQUEST_MS, function(cb)
    mcp_auth.token(SERVER, cb)
  end)
  check('token(): cb(nil, token)', err == nil and type(token) == 'string' and #token > 0, { token = token and '<redacted>', err = err })
  check('token() passes the mcp/accessToken result third', result and result.tokenType == 'Bearer' and result.server == SERVER,
    result and { tokenType = result.tokenType, server = result.server })
  if token then
    token_accepted(token, 'token()')
  end
  local headers
  err, headers = await(REQUEST_MS, function(cb)
    mcp_auth.headers(SERVER, cb)
  end)
  check('headers(): cb(nil, { Authorization = "Bearer <token>" })', err == nil and headers and headers.Authorization == 'Bearer ' .. tostring(token),
    { has_headers = headers ~= nil, err = err })
  local sync_token = mcp_auth.token_sync(SERVER, REQUEST_MS)
  check('token_sync() returns the same token', sync_token == token)
  local sync_headers, sync_err = mcp_auth.headers_sync(SERVER, REQUEST_MS)
  check('headers_sync() returns the same headers', sync_err == nil and sync_headers and sync_headers.Authorization == 'Bearer ' .. tostring(token))
  local rerr, rres = await(REQUEST_MS, function(cb)
    mcp_auth.request('mcp/authStatus', { server = SERVER }, cb)
  end)
  check('request(): cb(nil, result) with the raw result', rerr == nil and rres and rres.servers and rres.servers[1].server == SERVER, { rerr, rres })

  checkhealth('authorized')
  s = mcp_auth.status(SERVER)
  check('statusline still "MCP ok" after checkhealth', mcp_auth.statusline() == 'MCP ok', mcp_auth.statusline())

  -------------------------------------------------------------------------
  out('# the sidecar dies: restarted with a message, file storage persists')
  local old_pid = sidecar.pid()
  vim.uv.kill(old_pid, 'sigkill')
  check(
    'a message says the sidecar exited and is restarted',
    wait(REQUEST_MS, function()
      return #notes_matching('exited unexpectedly', true) > 0
    end),
    notes
  )
  check(
    'a new sidecar process is running',
    wait(REQUEST_MS, function()
      return sidecar.phase() == 'running' and sidecar.pid() ~= nil and sidecar.pid() ~= old_pid
    end),
    { sidecar.phase(), sidecar.pid(), old_pid }
  )
  local lerr0, list = await(REQUEST_MS, function(cb)
    mcp_auth.refresh(cb)
  end)
  check('refresh(): cb(nil, servers); the new sidecar reports the stored credential (authorized)',
    lerr0 == nil and list and list[1] and list[1].state == 'authorized', { lerr0, list })
  local token2 = mcp_auth.token_sync(SERVER, REQUEST_MS)
  check('token() works after the restart', type(token2) == 'string' and #token2 > 0)
  if token2 then
    token_accepted(token2, 'after restart')
  end

  -------------------------------------------------------------------------
  out('# :McpAuth logout')
  vim.cmd('McpAuth logout ' .. SERVER)
  ok, line = statusline_becomes('MCP needs auth', REQUEST_MS)
  table.insert(captured, { 'after logout', line })
  check(':McpAuth logout flips the statusline back to "MCP needs auth"', ok, line)
  check(
    ':McpAuth logout reported its result',
    wait(REQUEST_MS, function()
      return #notes_matching('logged out of ' .. SERVER, true) > 0
    end),
    notes
  )
  terr, tok = await(REQUEST_MS, function(cb)
    mcp_auth.token(SERVER, cb)
  end)
  check('token() after logout fails with 1001', tok == nil and terr and terr.code == 1001, { terr, tok })

  -------------------------------------------------------------------------
  out('# browser "auto": the sidecar asks Neovim with window/showDocument → vim.ui.open')
  local opened = {}
  local real_open = vim.ui.open
  vim.ui.open = function(uri)
    table.insert(opened, uri)
    return vim.system({ NODE, FOLLOW, uri }, { text = true }), nil
  end
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { browser = 'auto' }))
  check('setup() again stopped the old sidecar', sidecar.phase() == 'stopped', sidecar.phase())
  local aerr, st = await(AUTHORIZE_MS, function(cb)
    mcp_auth.authorize(SERVER, cb)
  end)
  check('authorize() through window/showDocument: cb(nil, status) authorized', aerr == nil and st and st.state == 'authorized', { aerr, st })
  check('vim.ui.open got the authorization URL', #opened == 1 and opened[1] == mcp_auth.pending_url(SERVER), opened)
  check('statusline "MCP ok"', mcp_auth.statusline() == 'MCP ok', mcp_auth.statusline())
  vim.ui.open = real_open
  local lerr, lres = await(REQUEST_MS, function(cb)
    mcp_auth.logout(SERVER, cb)
  end)
  check('logout(): cb(nil, result) with the new status', lerr == nil and lres and lres.status and lres.status.state == 'unauthenticated', { lerr, lres })
  check('statusline "MCP needs auth" after logout()', mcp_auth.statusline() == 'MCP needs auth', mcp_auth.statusline())

  -------------------------------------------------------------------------
  out('# browser "none" (SSH): copy the URL, :McpAuth paste the callback URL')
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { browser = 'none' }))
  vim.cmd('McpAuth authorize ' .. SERVER)
  check(
    'authorization URL announced',
    wait(REQUEST_MS, function()
      return mcp_auth.pending_url(SERVER) ~= nil
    end)
  )
  url = mcp_auth.pending_url(SERVER)
  check('the unnamed register is still untouched', vim.fn.getreg('"') == "the user's yank", vim.fn.getreg('"'))
  vim.cmd('McpAuth copy ' .. SERVER)
  check(':McpAuth copy (no clipboard provider) puts the URL into the unnamed register, as asked',
    url ~= nil and vim.fn.getreg('"') == url, vim.fn.getreg('"'))
  vim.cmd('McpAuth copy ' .. SERVER .. ' b')
  check(':McpAuth copy <server> b puts it into register b', url ~= nil and vim.fn.getreg('b') == url, vim.fn.getreg('b'))
  ok, line = statusline_becomes('MCP authorizing…', REQUEST_MS)
  check('statusline "MCP authorizing…" while the flow waits', ok, line)
  -- The user's browser (elsewhere): the AS auto-approves and redirects to the
  -- loopback callback, which we do not follow; the "address bar" is Location.
  local r = vim.system({ 'curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{redirect_url}', url or '' }, { text = true })
    :wait(15000)
  local callback_url = vim.trim(r.stdout or '')
  table.insert(secrets, callback_url:match('[?&]code=([^&]+)'))
  check('the AS redirected to the loopback callback', callback_url:match('^http://127%.0%.0%.1:%d+/.*code=') ~= nil, callback_url)
  local real_input = vim.ui.input
  local prompted
  vim.ui.input = function(opts, on_confirm)
    prompted = opts.prompt
    on_confirm(callback_url)
  end
  vim.cmd('McpAuth paste')
  ok, line = statusline_becomes('MCP ok', AUTHORIZE_MS)
  vim.ui.input = real_input
  check(':McpAuth paste (server picked: the one authorizing) asked for the URL', prompted and prompted:find(SERVER, 1, true) ~= nil, prompted)
  check(':McpAuth paste completes the authorization ("MCP ok")', ok, line)
  check(
    'the waiting :McpAuth authorize finished too',
    wait(REQUEST_MS, function()
      return not mcp_auth.is_authorizing(SERVER)
    end)
  )
  token = mcp_auth.token_sync(SERVER, REQUEST_MS)
  check('token() after paste', type(token) == 'string' and #token > 0)
  if token then
    token_accepted(token, 'after paste')
  end

  -------------------------------------------------------------------------
  out('# browser "auto" over SSH without a display: no vim.ui.open, :McpAuth paste <server> <url>')
  lerr, lres = await(REQUEST_MS, function(cb)
    mcp_auth.logout(SERVER, cb)
  end)
  check('logout() before the SSH case', lres and lres.status and lres.status.state == 'unauthenticated', { lerr, lres })
  local saved_env = { SSH_CONNECTION = vim.env.SSH_CONNECTION, DISPLAY = vim.env.DISPLAY, WAYLAND_DISPLAY = vim.env.WAYLAND_DISPLAY }
  vim.env.SSH_CONNECTION = '192.0.2.1 50000 192.0.2.2 22'
  vim.env.DISPLAY = nil
  vim.env.WAYLAND_DISPLAY = nil
  opened = {}
  vim.ui.open = function(uri)
    table.insert(opened, uri)
    return nil, 'must not be called over SSH'
  end
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { browser = 'auto', copy_url = 'a' }))
  vim.fn.setreg('"', 'the user\'s yank')
  vim.fn.setreg('a', '')
  local pending_before = mcp_auth.pending_url(SERVER)
  vim.cmd('McpAuth authorize ' .. SERVER)
  check(
    'authorization URL announced over SSH',
    wait(REQUEST_MS, function()
      local u = mcp_auth.pending_url(SERVER)
      return u ~= nil and u ~= pending_before
    end)
  )
  ok, line = statusline_becomes('MCP authorizing…', REQUEST_MS)
  check('statusline "MCP authorizing…" (SSH)', ok, line)
  url = mcp_auth.pending_url(SERVER)
  check('copy_url = "a" copied the URL into register a', url ~= nil and vim.fn.getreg('a') == url, vim.fn.getreg('a'))
  check('…and left the unnamed register alone', vim.fn.getreg('"') == "the user's yank", vim.fn.getreg('"'))
  r = vim.system({ 'curl', '-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{redirect_url}', url or '' }, { text = true })
    :wait(15000)
  callback_url = vim.trim(r.stdout or '')
  table.insert(secrets, callback_url:match('[?&]code=([^&]+)'))
  vim.cmd('McpAuth paste ' .. SERVER .. ' ' .. callback_url)
  ok, line = statusline_becomes('MCP ok', AUTHORIZE_MS)
  check(':McpAuth paste <server> <url> completes the authorization (SSH)', ok, line)
  check('vim.ui.open was not called over SSH without a display', #opened == 0, opened)
  vim.ui.open = real_open
  for _, k in ipairs({ 'SSH_CONNECTION', 'DISPLAY', 'WAYLAND_DISPLAY' }) do
    vim.env[k] = saved_env[k]
  end

  -------------------------------------------------------------------------
  out('# cancelling an authorization: the callback gets err.code -32800 (vim.lsp.rpc drops such answers)')
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { browser = 'none' }))
  local pending_before_cancel = mcp_auth.pending_url(SERVER)
  local cancel_err, cancel_res, cancel_calls = nil, nil, 0
  mcp_auth.authorize(SERVER, function(e, r_)
    cancel_calls = cancel_calls + 1
    cancel_err, cancel_res = e, r_
  end, { force = true })
  check(
    'forced authorization announced its URL',
    wait(REQUEST_MS, function()
      local u = mcp_auth.pending_url(SERVER)
      return u ~= nil and u ~= pending_before_cancel
    end)
  )
  check('cancel() finds the request', mcp_auth.cancel(SERVER) == true)
  check(
    'the authorize callback ran once with err.code -32800 (RequestCancelled)',
    wait(REQUEST_MS, function()
      return cancel_calls > 0
    end) and cancel_calls == 1 and cancel_err and cancel_err.code == mcp_auth.errors.RequestCancelled and cancel_res == nil,
    { calls = cancel_calls, err = cancel_err }
  )
  wait(300, function()
    return false
  end)
  check('…and only once', cancel_calls == 1, cancel_calls)
  check('no longer authorizing', not mcp_auth.is_authorizing(SERVER))
  ok, line = statusline_becomes('MCP ok', REQUEST_MS)
  check('statusline back to "MCP ok" (the stored tokens stay)', ok, line)
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { browser = 'none' }))
  local queued_err, queued_calls = nil, 0
  mcp_auth.authorize(SERVER, function(e)
    queued_calls = queued_calls + 1
    queued_err = e
  end, { force = true })
  check('a request made while the sidecar starts is queued', sidecar.phase() == 'starting', sidecar.phase())
  mcp_auth.cancel(SERVER)
  check(
    'cancelled before it was sent: the callback still runs once, with -32800',
    wait(REQUEST_MS, function()
      return queued_calls > 0
    end) and queued_calls == 1 and queued_err and queued_err.code == mcp_auth.errors.RequestCancelled,
    { calls = queued_calls, err = queued_err }
  )
  check('…and the sidecar still starts and reports "MCP ok"', wait(REQUEST_MS, function()
    return sidecar.phase() == 'running' and mcp_auth.statusline() == 'MCP ok'
  end), { sidecar.phase(), mcp_auth.statusline() })

  -------------------------------------------------------------------------
  out('# another process logs out (the CLI): the statusline follows by notification alone')
  local requests_before = requests_sent
  local cli = vim.system({ BIN, 'logout', '--storage', 'file', MCP_URL }, { text = true }):wait(REQUEST_MS)
  check('`mcp-auth-sidecar logout <url>` succeeded', cli.code == 0, cli)
  ok, line = statusline_becomes('MCP needs auth', 5000)
  check('statusline "MCP needs auth" after a logout in another process', ok, line)
  check('…without any request from Neovim (cache fed by mcp/authStatusChanged)', requests_sent == requests_before,
    requests_sent - requests_before)
  local want = { 'authorizing', 'authorized', 'unauthenticated' }
  local seen = {}
  for _, st_ in ipairs(notified_states) do
    seen[st_] = true
  end
  check('mcp/authStatusChanged notifications carried authorizing, authorized and unauthenticated',
    seen.authorizing and seen.authorized and seen.unauthenticated, notified_states)
  terr, tok = await(REQUEST_MS, function(cb)
    mcp_auth.token(SERVER, cb)
  end)
  check('token() after the other process logged out fails with 1001', tok == nil and terr and terr.code == 1001,
    { terr, tok })
  local cerr, cres = await(REQUEST_MS, function(cb)
    mcp_auth.handle_challenge(SERVER, 401, 'Bearer realm="mcp"', cb)
  end)
  check('handle_challenge(): cb(nil, result) with action "authorize" when logged out',
    cerr == nil and cres and cres.action == 'authorize', { cerr, cres })
  checkhealth('logged out')
  vim.cmd('McpAuth log')
  local log_buf_lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  check(':McpAuth log shows the sidecar\'s stderr, read back from the LSP log',
    vim.iter(log_buf_lines):any(function(l)
      return l:find('mcp_auth_sidecar', 1, true) ~= nil
    end), log_buf_lines)
  pcall(vim.cmd, 'close')
  vim.lsp.set_log_level('debug')
  vim.cmd('silent checkhealth mcp_auth')
  local debug_health = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\n')
  pcall(vim.cmd, 'tabclose')
  vim.lsp.set_log_level('warn')
  check('checkhealth warns that LSP log level DEBUG writes tokens to the LSP log',
    debug_health:find('WARNING the LSP log level is DEBUG', 1, true) ~= nil, debug_health)

  local errors = vim.tbl_filter(function(n)
    return n.level >= vim.log.levels.ERROR
  end, notes)
  check('no ERROR notifications during the run', #errors == 0, errors)

  -------------------------------------------------------------------------
  out('# autostart = false: rendering does not start the sidecar')
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { autostart = false }))
  check('status line empty with autostart = false', mcp_auth.statusline() == '', mcp_auth.statusline())
  wait(300, function()
    return false
  end)
  check('…and the sidecar stays stopped', sidecar.phase() == 'stopped', sidecar.phase())

  -------------------------------------------------------------------------
  out('# a bad option is named, its value never echoed')
  local SECRET = 'cs-TOPSECRET-4711'
  local messages_before = vim.api.nvim_exec2('messages', { output = true }).output
  local bad_opts = vim.tbl_extend('force', base_opts, {
    servers = {
      [SERVER] = { url = MCP_URL },
      corp = { url = 42, clientId = 'nvim', clientSecret = SECRET },
      broken = SECRET,
      port = { url = 'https://mcp.example/mcp', clientSecret = SECRET, callbackPort = SECRET },
    },
    storage = SECRET,
    cmd = SECRET,
    env = { TOKEN = { SECRET } },
  })
  -- once with Neovim's own vim.notify (→ :messages), once recorded
  vim.notify = real_notify
  mcp_auth.setup(bad_opts)
  vim.notify = recording_notify
  local notes_before = #notes
  mcp_auth.setup(bad_opts)
  local new_notes = vim.list_slice(notes, notes_before + 1, #notes)
  local messages_after = vim.api.nvim_exec2('messages', { output = true }).output
  local leaked = {}
  for _, n in ipairs(new_notes) do
    if n.msg:find(SECRET, 1, true) then
      table.insert(leaked, n.msg)
    end
  end
  check('setup() reported the problems with vim.notify', #new_notes >= 5, new_notes)
  check('no notification contains the value (a client secret)', #leaked == 0, leaked)
  local new_messages = messages_after:sub(#messages_before + 1)
  check(':messages got the problems (Neovim\'s vim.notify)', new_messages:find('servers.corp.url', 1, true) ~= nil, new_messages)
  check('no :messages line contains the value', not new_messages:find(SECRET, 1, true), new_messages)
  local all = table.concat(vim.tbl_map(function(n)
    return n.msg
  end, new_notes), '\n')
  check('the problems name the option paths', all:find('servers.corp.url', 1, true) and all:find('servers.broken', 1, true)
    and all:find('servers.port.callbackPort', 1, true) and all:find('option storage', 1, true)
    and all:find('option cmd', 1, true) and all:find('option env', 1, true), all)
  check('…and what is accepted', all:find('expected a non-empty string', 1, true) and all:find('one of auto, keyring, file, memory', 1, true)
    and all:find('an integer from 0 to 65535', 1, true), all)
  check('the good server entry is kept, the bad ones dropped',
    vim.deep_equal(require('mcp_auth.config').server_names(), { SERVER }), require('mcp_auth.config').server_names())

  -------------------------------------------------------------------------
  out('# a missing sidecar binary is reported, not fatal')
  mcp_auth.setup(vim.tbl_extend('force', base_opts, { cmd = { '/nonexistent/mcp-auth-sidecar' } }))
  terr, tok = await(REQUEST_MS, function(cb)
    mcp_auth.token(SERVER, cb)
  end)
  check('token() reports the missing binary: cb(err) with SidecarUnavailable',
    tok == nil and terr and terr.code == mcp_auth.errors.SidecarUnavailable and tostring(terr):find('not found', 1, true) ~= nil, terr)
  check('statusline "MCP error"', mcp_auth.statusline() == 'MCP error', mcp_auth.statusline())
end, debug.traceback)

if not ok_run then
  check('test script ran to the end', false, err_run)
end
finish()
