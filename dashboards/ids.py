"""Component ids shared by layouts and callbacks (one place, no typos)."""

URL = "url"
PAGE = "page"
TZ_OFFSET = "tz-offset"
REFRESH_TIMER = "refresh-timer"
RANGE = "time-range"
CUSTOM_FROM = "time-from"
CUSTOM_TO = "time-to"
CUSTOM_APPLY = "time-apply"
TIMEZONE = "time-zone"
REFRESH = "refresh"
NAV = "nav"

# Pattern-matching id types: {"type": VARIABLE, "name": <variable>}.
VARIABLE = "var"
ROW = "row"
ROW_BODY = "row-body"
PANEL = "panel"

EXPLORE_EXPR = "explore-expr"
EXPLORE_RUN = "explore-run"

TOPOLOGY_GRAPH = "topology-graph"
TOPOLOGY_LEVEL = "topology-level"

TRACE_SEARCH = "trace-search"
TRACE_SCATTER = "trace-scatter"
WATERFALL = "waterfall"

SPAN_DETAIL = "span-detail"
SPAN_SELECTED = "span-selected"
DYE_USER = "dye-user"
DYE_USER_RESULT = "dye-user-result"

SILENCE = "silence"
SILENCE_RESULT = "silence-result"

DYE_KIND = "dye-kind"
DYE_KEY = "dye-key"
DYE_VALUE = "dye-value"
DYE_SERVICE = "dye-service"
DYE_TTL = "dye-ttl"
DYE_RATIO = "dye-ratio"
DYE_ADD = "dye-add"
DYE_END = "dye-end"
DYE_RESULT = "dye-result"
DYE_TABLE = "dye-table"
