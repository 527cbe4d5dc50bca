//! The built-in tools, resource and prompt: what `make run` serves with no configuration.
//! One instance serves every session ([`Builtin::shared`]); what a call needs of its session
//! comes with the call's context.
//!
//! Their names are a contract that tests and users rely on:
//! - tool `echo` (`text`) returns the same text;
//! - tool `add` (`a`, `b`) returns the sum;
//! - tool `sleep` (`ms`, optional `steps`) waits, sends `steps` progress notifications when
//!   the request carries a progress token, and stops at once when cancelled;
//! - resource `mcpgw://about` (text);
//! - prompt `greeting` (argument `name`).

use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult, Implementation,
    ListPromptsResult, ListResourcesResult, PaginatedRequestParams, ProgressNotificationParam, Prompt, PromptArgument,
    PromptMessage, ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource, ResourceContents,
    Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Deserialize;

/// The URI of the built-in resource.
pub const ABOUT_URI: &str = "mcpgw://about";
/// The name of the built-in prompt.
pub const GREETING_PROMPT: &str = "greeting";
/// The longest `sleep` accepted, so one call cannot hold a session for hours.
const MAX_SLEEP_MS: u64 = 10 * 60 * 1000;
/// The most progress notifications one `sleep` sends.
const MAX_STEPS: u32 = 1000;

/// Arguments of `echo`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Arguments of `add`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AddArgs {
    /// The first addend.
    pub a: f64,
    /// The second addend.
    pub b: f64,
}

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SleepArgs {
    /// How long to wait, in milliseconds (at most ten minutes).
    pub ms: u64,
    /// How many progress notifications to send, evenly spaced, when the request carries a
    /// progress token (default 1).
    #[serde(default)]
    pub steps: Option<u32>,
}

/// The in-process MCP server. A new one is built for every session.
#[derive(Debug, Clone)]
pub struct Builtin {
    tool_router: ToolRouter<Self>,
}

impl Default for Builtin {
    fn default() -> Self {
        Self::new()
    }
}

impl Builtin {
    /// The one instance every session shares: it holds no per-session state, and building
    /// its tool router (JSON schemas and all) for every session would cost time and memory.
    pub fn shared() -> std::sync::Arc<Self> {
        static SHARED: std::sync::LazyLock<std::sync::Arc<Builtin>> =
            std::sync::LazyLock::new(|| std::sync::Arc::new(Builtin::new()));
        SHARED.clone()
    }

    /// Its tools.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.tool_router.list_all()
    }

    /// Its resources.
    pub fn resources(&self) -> Vec<Resource> {
        vec![Resource::new(ABOUT_URI, "about").with_description("What this gateway is.").with_mime_type("text/plain")]
    }

    /// Its prompts.
    pub fn prompts(&self) -> Vec<Prompt> {
        let name = PromptArgument::new("name").with_description("Who to greet.").with_required(true);
        vec![Prompt::new(GREETING_PROMPT, Some("A friendly greeting."), Some(vec![name]))]
    }
}

#[tool_router]
impl Builtin {
    /// A fresh server.
    pub fn new() -> Self {
        Self { tool_router: Self::tool_router() }
    }

    #[tool(description = "Return the given text unchanged.")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> String {
        args.text
    }

    #[tool(description = "Add two numbers and return the sum.")]
    async fn add(&self, Parameters(args): Parameters<AddArgs>) -> String {
        (args.a + args.b).to_string()
    }

    #[tool(
        description = "Wait `ms` milliseconds, sending `steps` progress notifications when the request has a progress token. Stops at once when cancelled."
    )]
    async fn sleep(
        &self,
        Parameters(args): Parameters<SleepArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        if args.ms > MAX_SLEEP_MS {
            return Err(ErrorData::invalid_params(format!("ms must be at most {MAX_SLEEP_MS}"), None));
        }
        let steps = args.steps.unwrap_or(1).min(MAX_STEPS);
        let token = ctx.meta.get_progress_token();
        let ticks = if token.is_some() { steps.max(1) } else { 1 };
        let slice = Duration::from_millis(args.ms) / ticks;
        for done in 1..=ticks {
            tokio::select! {
                () = tokio::time::sleep(slice) => {}
                () = ctx.ct.cancelled() => {
                    return Err(ErrorData::internal_error("cancelled", None));
                }
            }
            if let Some(token) = &token
                && steps > 0
            {
                let param = ProgressNotificationParam::new(token.clone(), f64::from(done))
                    .with_total(f64::from(ticks))
                    .with_message(format!("step {done} of {ticks}"));
                // A client that went away cannot take progress; the sleep goes on regardless.
                let _ = ctx.peer.notify_progress(param).await;
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("slept {} ms", args.ms))]))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Builtin {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder().enable_tools().enable_resources().enable_prompts().build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("mcpgw", env!("CARGO_PKG_VERSION")))
            .with_instructions("mcpgw's built-in tools: echo, add and sleep.")
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let about =
            Resource::new(ABOUT_URI, "about").with_description("What this gateway is.").with_mime_type("text/plain");
        Ok(ListResourcesResult::with_all_items(vec![about]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != ABOUT_URI {
            return Err(ErrorData::resource_not_found(format!("no resource {}", request.uri), None));
        }
        let text =
            format!("mcpgw {}: an MCP gateway serving legacy HTTP+SSE and Streamable HTTP.", env!("CARGO_PKG_VERSION"));
        let contents = ResourceContents::text(text, ABOUT_URI).with_mime_type("text/plain");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(self.prompts()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != GREETING_PROMPT {
            return Err(ErrorData::invalid_params(format!("no prompt {}", request.name), None));
        }
        let name = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("name"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| ErrorData::invalid_params("the argument `name` is required", None))?;
        let message = PromptMessage::new_text(Role::User, format!("Please greet {name} warmly."));
        Ok(GetPromptResult::new(vec![message]).with_description("A friendly greeting.").into())
    }
}
