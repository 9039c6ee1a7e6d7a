// The project's machines run Node 20; the AWS SDK warns once per process that its 2027 releases
// need Node 22 (Lambda runs nodejs22.x). In tests that line is noise in every worker and child.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
