/* Bank card and Chinese resident ID numbers in chat text: the mirror of messaging/pii.py.
 *
 * chat.js warns the buyer before sending one; the server masks whatever gets through. Both follow
 * the same rules and are checked against the same vectors (tests/messaging/pii_vectors.json, run by
 * node in tests/messaging/test_pii.py). Works in the browser (window.RefundChatPII) and in node. */
(function (root) {
  "use strict";
  // The same patterns as the server's (lookbehind: every current browser has it).
  var RUN = /(?<![0-9A-Za-z])[0-9](?:[ \-]?[0-9])*(?![0-9A-Za-z])/g;
  var ID = /(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])/g;
  var SEPARATORS = /[ \-]+/g;
  function range(from, to) { var out = []; for (var n = from; n <= to; n++) out.push(n); return out; }
  var CARD_PREFIXES = [
    [/^62/, range(16, 19)],
    [/^4/, [16, 19]],
    [/^(5[1-5]|222[1-9]|22[3-9]|2[3-6]|27[01]|2720)/, [16]],
    [/^3[47]/, [15]],
    [/^35(2[89]|[3-8])/, range(16, 19)],
    [/^(30[0-5]|36|38)/, range(14, 19)],
    [/^(6011|64[4-9]|65)/, range(16, 19)],
    [/^(60|9558)/, range(16, 19)],
    [/^(50|5[6-8]|6304|6759|676[1-3])/, range(12, 19)]
  ];
  var ORDER_NO = /^20[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{10}$/;
  var PROVINCES = "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 71 81 82 83 91".split(" ");
  var ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  var ID_CHECK = "10X98765432";
  var MIN_DIGITS = 12;

  function luhnValid(digits) {
    var total = 0;
    for (var i = 0; i < digits.length; i++) {
      var value = digits.charCodeAt(digits.length - 1 - i) - 48;
      if (i % 2) value = value > 4 ? value * 2 - 9 : value * 2;
      total += value;
    }
    return total % 10 === 0;
  }

  function isCardNumber(digits) {
    if (digits.length < 12 || digits.length > 19 || ORDER_NO.test(digits) || !luhnValid(digits)) return false;
    return CARD_PREFIXES.some(function (rule) { return rule[0].test(digits) && rule[1].indexOf(digits.length) >= 0; });
  }

  function isResidentId(value, today) {
    value = value.toUpperCase();
    if (value.length !== 18 || !/^[0-9]{17}/.test(value) || PROVINCES.indexOf(value.slice(0, 2)) < 0) return false;
    var y = Number(value.slice(6, 10)), m = Number(value.slice(10, 12)), d = Number(value.slice(12, 14));
    var born = new Date(Date.UTC(y, m - 1, d));
    if (born.getUTCFullYear() !== y || born.getUTCMonth() !== m - 1 || born.getUTCDate() !== d) return false;
    var now = today || new Date();
    var todayUtc = Date.UTC(now.getFullYear(), now.getMonth(), now.getDate());
    if (y < 1900 || born.getTime() > todayUtc) return false;
    var sum = 0;
    for (var i = 0; i < 17; i++) sum += Number(value[i]) * ID_WEIGHTS[i];
    return ID_CHECK[sum % 11] === value[17];
  }

  function maskDigits(value) {
    var compact = value.replace(SEPARATORS, "");
    return compact.slice(0, 6) + new Array(compact.length - 10 + 1).join("*") + compact.slice(-4);
  }

  function countDigits(text) { var m = text.match(/[0-9]/g); return m ? m.length : 0; }

  function find(text, today) {
    if (text.length < MIN_DIGITS || countDigits(text) < MIN_DIGITS) return [];
    var found = [];
    var match;
    ID.lastIndex = 0;
    while ((match = ID.exec(text))) {
      var idEnd = match.index + match[0].length;
      if (isResidentId(match[0], today)) {
        found.push({ kind: "resident_id", start: match.index, end: idEnd, masked: maskDigits(match[0]) });
      }
    }
    var taken = found.slice();
    RUN.lastIndex = 0;
    while ((match = RUN.exec(text))) {
      var runStart = match.index;
      candidates(match[0], runStart).forEach(function (span) {
        var overlaps = taken.some(function (t) { return span[0] < t.end && t.start < span[1]; });
        if (overlaps) return;
        var digits = text.slice(span[0], span[1]).replace(SEPARATORS, "");
        if (isCardNumber(digits)) found.push({ kind: "card", start: span[0], end: span[1], masked: maskDigits(digits) });
      });
    }
    return found.sort(function (a, b) { return a.start - b.start; });
  }

  // The whole run, or, for a run too long to be one number, each of its space-separated parts.
  function candidates(run, offset) {
    if (countDigits(run) <= 19) return [[offset, offset + run.length]];
    var parts = [], part, re = /[0-9](?:-?[0-9])*/g;
    while ((part = re.exec(run))) parts.push([offset + part.index, offset + part.index + part[0].length]);
    return parts;
  }

  function mask(text, today) {
    var found = find(text, today);
    if (!found.length) return text;
    var out = "", position = 0;
    found.forEach(function (item) { out += text.slice(position, item.start) + item.masked; position = item.end; });
    return out + text.slice(position);
  }

  var api = { find: find, mask: mask, luhnValid: luhnValid, isCardNumber: isCardNumber, isResidentId: isResidentId };
  if (typeof module !== "undefined" && module.exports) module.exports = api;
  else root.RefundChatPII = api;
})(this);
