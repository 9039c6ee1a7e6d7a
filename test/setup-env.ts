// The project's machines run Node 20; the AWS SDK warns once per process that its 2027 releases
// need Node 22 (Lambda runs nodejs24.x). Tests create SDK clients themselves, so they set it here;
// the CLI (lib/cli/main.ts) and the Serverless commands (lib/deploy/serverless-plugin.js) do so for
// their own processes.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
