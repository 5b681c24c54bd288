namespace ModelRoute.Tests.Mcp;

/// <summary>Scripts for the official TypeScript MCP SDK (<c>@modelcontextprotocol/sdk</c>), run by node with the package installed.</summary>
public static class McpTypeScriptScripts
{
    public const string Package = "@modelcontextprotocol/sdk@1.32.2";

    /// <summary>
    /// Connects over <c>http URL KEY</c> or <c>stdio DLL URL KEY</c>, then lists tools, submits and waits with progress,
    /// cancels, submits a batch and reads an image artifact; prints one JSON line of what it saw.
    /// </summary>
    public const string Tour = """
        const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
        const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
        const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');

        function transport(args) {
          if (args[0] === 'http') {
            return new StreamableHTTPClientTransport(new URL(args[1]), { requestInit: { headers: { Authorization: 'Bearer ' + args[2] } } });
          }
          return new StdioClientTransport({
            command: 'dotnet', args: [args[1], 'mcp'], stderr: 'inherit',
            env: { ...process.env, MODELROUTE_URL: args[2], MODELROUTE_API_KEY: args[3] },
          });
        }

        (async () => {
          const client = new Client({ name: 'ts-tour', version: '1.0.0' });
          await client.connect(transport(process.argv.slice(2)));
          const out = {};
          const call = (name, args, options) => client.callTool({ name, arguments: args }, undefined, options);
          out.tools = (await client.listTools()).tools.map(t => t.name).sort();
          const text = (content, latency) => ({ messages: [{ role: 'user', content }], simulate: { latency_ms: latency } });
          const submitted = await call('submit_execution', { model: 'sim/text', input: text('hello from ts', 6500), idempotency_key: 'ts-tour-1' });
          const id = submitted.structuredContent.id;
          let progress = 0;
          const waited = await call('wait_for_execution', { id, timeout_seconds: 30 }, { onprogress: () => { progress++; }, timeout: 60000 });
          out.waited = { status: waited.structuredContent.status, text: waited.structuredContent.output.text, progress };
          const slow = await call('submit_execution', { model: 'sim/text', input: text('slow', 60000), idempotency_key: 'ts-tour-2' });
          out.cancelled = (await call('cancel_execution', { id: slow.structuredContent.id })).structuredContent.status;
          const again = await call('cancel_execution', { id: slow.structuredContent.id });
          out.cancelAgain = { isError: again.isError, code: again.structuredContent.code };
          const batch = await call('submit_batch', { executions: [
            { model: 'sim/text', input: text('a', 0), idempotency_key: 'ts-batch-a' },
            { model: 'sim/nope', input: { prompt: 'b' }, idempotency_key: 'ts-batch-b' } ] });
          out.batch = batch.structuredContent.data.map(i => i.status);
          const image = await call('submit_execution', { model: 'sim/image', input: { prompt: 'a cat', n: 1 }, idempotency_key: 'ts-image-1' });
          await call('wait_for_execution', { id: image.structuredContent.id, timeout_seconds: 30 });
          const artifact = await call('get_artifact', { id: image.structuredContent.id, name: 'image-0.png' });
          const picture = artifact.content.find(c => c.type === 'image');
          out.image = { mimeType: picture.mimeType, bytes: Buffer.from(picture.data, 'base64').length, size: artifact.structuredContent.size_bytes };
          const missing = await call('submit_execution', { model: 'sim/text', input: text('x', 0) });
          out.missingKey = { isError: missing.isError, code: missing.structuredContent.code, field: missing.structuredContent.field };
          await client.close();
          console.log(JSON.stringify(out));
        })().catch(e => { console.error(e); process.exit(1); });
        """;

    /// <summary>
    /// <c>URL_A KEY ID URL_B</c>: subscribes on node A's /mcp to the execution, cancels it through node B's HTTP API, and
    /// prints how long the update took to arrive.
    /// </summary>
    public const string SubscribeAcrossNodes = """
        const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
        const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
        const { ResourceUpdatedNotificationSchema } = require('@modelcontextprotocol/sdk/types.js');

        (async () => {
          const [urlA, key, id, urlB] = process.argv.slice(2);
          const client = new Client({ name: 'ts-subscriber', version: '1.0.0' });
          await client.connect(new StreamableHTTPClientTransport(new URL(urlA), { requestInit: { headers: { Authorization: 'Bearer ' + key } } }));
          const uri = 'modelroute://executions/' + id;
          const updated = new Promise(resolve => client.setNotificationHandler(ResourceUpdatedNotificationSchema, n => { if (n.params.uri === uri) resolve(); }));
          const capabilities = client.getServerCapabilities();
          await client.subscribeResource({ uri });
          const started = Date.now();
          const cancel = await fetch(new URL('/v1/executions/' + id + '/cancel', urlB), { method: 'POST', headers: { Authorization: 'Bearer ' + key } });
          const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no notifications/resources/updated within 10 s')), 10000));
          await Promise.race([updated, timeout]);
          const ms = Date.now() - started;
          const read = await client.readResource({ uri });
          await client.close();
          console.log(JSON.stringify({ subscribe: capabilities.resources.subscribe, cancel: cancel.status, ms, status: JSON.parse(read.contents[0].text).status }));
        })().catch(e => { console.error(e); process.exit(1); });
        """;
}
