--- Highlight groups of the status line (default links, so colorschemes and
--- users can override them).
local M = {}

M.links = {
  McpAuthOk = 'DiagnosticOk',
  McpAuthWarn = 'DiagnosticWarn',
  McpAuthError = 'DiagnosticError',
  McpAuthInfo = 'DiagnosticInfo',
}

function M.setup()
  for group, target in pairs(M.links) do
    vim.api.nvim_set_hl(0, group, { link = target, default = true })
  end
end

return M
