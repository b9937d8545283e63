// The page's settings, from the data-* attributes of #chat (the CSP allows no inline script).

function number(value, fallback) {
  const parsed = Number(value);
  return Number.isFinite(parsed) ? parsed : fallback;
}

export function readConfig(data) {
  return {
    roomId: number(data.roomId, 0),
    userId: number(data.userId, 0),
    userName: data.userName || "You",
    userAgency: data.userAgency || "",
    timeZone: data.timeZone || "UTC",
    language: data.language || undefined,
    lastSeq: number(data.lastSeq, 0),
    // How far the reader had read (the "New messages" line goes after it); all of it by default.
    lastReadSeq: number(data.lastReadSeq, number(data.lastSeq, 0)),
    officeOpens: number(data.officeOpens, 8),
    officeCloses: number(data.officeCloses, 18),
    pageSize: Math.max(1, number(data.pageSize, 50)),
    canPost: data.canPost === "true",
    maxChars: number(data.maxChars, 8000),
    maxUploadBytes: number(data.maxUploadBytes, 0),
    wsPath: data.wsPath,
    unreadUrl: data.unreadUrl || "",
    attachmentsUrl: data.attachmentsUrl,
    loginUrl: data.loginUrl || "/login/",
    csrfToken: data.csrfToken || "",
    // The exercise's handling markings, lowest first, and its default.
    markings: (data.markings || "").split("|").filter(Boolean),
    defaultMarking: data.defaultMarking || "",
    isMember: data.isMember === "true",
  };
}
