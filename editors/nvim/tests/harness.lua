-- What the headless test files share: printed lines, counted checks, and
-- the last line "N passed, M failed".
local M = { passed = 0, failed = 0 }

function M.out(s)
  io.stdout:write(s .. '\n')
  io.stdout:flush()
end

--- Counts and prints one check; returns `cond`.
function M.check(name, cond, detail)
  if cond then
    M.passed = M.passed + 1
    M.out('ok     ' .. name)
  else
    M.failed = M.failed + 1
    M.out('FAILED ' .. name .. (detail ~= nil and (': ' .. (type(detail) == 'string' and detail or vim.inspect(detail))) or ''))
  end
  return cond
end

--- Runs `:checkhealth mcp_auth`, prints its lines under `label`, closes
--- its tab; returns the lines.
function M.checkhealth(label)
  vim.cmd('silent checkhealth mcp_auth')
  local lines = vim.api.nvim_buf_get_lines(0, 0, -1, false)
  M.out('  --- checkhealth (' .. label .. ') ---')
  for _, l in ipairs(lines) do
    if l ~= '' and not l:match('^=+$') and not l:match('^%-+$') then
      M.out('  | ' .. l)
    end
  end
  pcall(vim.cmd, 'tabclose')
  return lines
end

--- Prints the last line; true when every check passed.
function M.summary()
  M.out(('%d passed, %d failed'):format(M.passed, M.failed))
  return M.failed == 0
end

return M
