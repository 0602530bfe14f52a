// Starts GraphiQL against this server's /graphql, HTTP and WebSocket alike.
(function () {
  var wsScheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({
    url: window.location.origin + "/graphql",
    subscriptionUrl: wsScheme + "//" + window.location.host + "/graphql",
  });
  var defaultQuery = [
    "# Welcome to koomsg.",
    "# Paste your access key in the Headers tab below:",
    '#   {"Authorization": "Bearer <secret>"}',
    "",
    "{",
    "  me { kind name enterprise { name serviceEnabled } }",
    "}",
    "",
  ].join("\n");
  var root = document.getElementById("graphiql");
  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultHeaders: '{"Authorization": "Bearer "}',
      defaultEditorToolsVisibility: "headers",
      shouldPersistHeaders: true,
    })
  );
})();
