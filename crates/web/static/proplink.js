// PropLink's own script. Every page works without it: it only adds conveniences.
//
// Address look-up: a form's `[data-address-lookup]` box (shown only when a geocoder is set up)
// asks `/addresses/suggest` as the person types, and picking a suggestion fills the four
// address fields named in its `data-fill` (line 1, line 2, town, postcode).
(function () {
  "use strict";

  var WAIT_MS = 300;

  // Asks `urlFor(typed)` for JSON as the person types into `input` (after a pause, or at once on
  // Enter, which never submits the form half filled), once `shortest` characters are there.
  // Only the newest question's answer is used: `answered(json)`, or `failed()` when the server
  // does not answer; `cleared()` when the text is too short to ask about.
  function askAsYouType(input, shortest, urlFor, answered, failed, cleared) {
    var timer = null;
    var asked = 0;
    function ask() {
      var typed = input.value.trim();
      asked += 1;
      var mine = asked;
      if (typed.length < shortest) {
        cleared();
        return;
      }
      fetch(urlFor(typed), { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          return response.json();
        })
        .then(function (answer) {
          if (mine === asked) {
            answered(answer);
          }
        })
        .catch(function () {
          if (mine === asked) {
            failed();
          }
        });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, WAIT_MS);
    });
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(timer);
        ask();
      }
    });
  }

  // Address look-up.

  var SHORTEST = 3;

  function addressLookup(box) {
    var names = (box.getAttribute("data-fill") || "").split(" ");
    var form = box.closest("form");
    var input = box.querySelector("input");
    var list = box.querySelector("ul");
    var status = box.querySelector("[data-lookup-status]");
    if (!form || !input || !list || !status || names.length !== 4) {
      return;
    }

    function field(name) {
      return form.elements.namedItem(name);
    }

    function close() {
      list.textContent = "";
      input.setAttribute("aria-expanded", "false");
    }

    function fill(suggestion) {
      var values = [suggestion.line_1, suggestion.line_2, suggestion.city, suggestion.postcode];
      names.forEach(function (name, i) {
        var target = field(name);
        if (target) {
          target.value = values[i] || "";
        }
      });
      close();
      status.textContent = "Filled in from " + suggestion.label + ". Check the address before saving.";
      var first = field(names[0]);
      if (first) {
        first.focus();
      }
    }

    function options() {
      return Array.prototype.slice.call(list.querySelectorAll("button"));
    }

    function show(suggestions) {
      close();
      suggestions.forEach(function (suggestion, i) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "pl-suggestion";
        button.setAttribute("role", "option");
        button.id = input.id + "-option-" + i;
        button.textContent = suggestion.label;
        button.addEventListener("click", function () {
          fill(suggestion);
        });
        item.appendChild(button);
        list.appendChild(item);
      });
      input.setAttribute("aria-expanded", suggestions.length > 0 ? "true" : "false");
    }

    askAsYouType(
      input,
      SHORTEST,
      function (typed) {
        status.textContent = "Looking up addresses…";
        return "/addresses/suggest?q=" + encodeURIComponent(typed);
      },
      function (answer) {
        if (answer.message) {
          close();
          status.textContent = answer.message;
          return;
        }
        var found = answer.suggestions || [];
        show(found);
        status.textContent =
          found.length === 0
            ? "No addresses match; enter the address in the fields below."
            : found.length + (found.length === 1 ? " address found." : " addresses found.");
      },
      function () {
        close();
        status.textContent = "The address look-up is not answering; enter the address in the fields below.";
      },
      function () {
        close();
        status.textContent = "";
      }
    );
    input.addEventListener("keydown", function (event) {
      if (event.key === "ArrowDown" && options().length > 0) {
        event.preventDefault();
        options()[0].focus();
      } else if (event.key === "Escape") {
        close();
      }
    });
    list.addEventListener("keydown", function (event) {
      var all = options();
      var at = all.indexOf(document.activeElement);
      if (event.key === "ArrowDown" && at < all.length - 1) {
        event.preventDefault();
        all[at + 1].focus();
      } else if (event.key === "ArrowUp") {
        event.preventDefault();
        (at > 0 ? all[at - 1] : input).focus();
      } else if (event.key === "Escape") {
        close();
        input.focus();
      }
    });
    box.hidden = false;
  }

  document.querySelectorAll("[data-address-lookup]").forEach(addressLookup);

  // Contact pickers: a `select[data-search]` lists the first 500 contacts; a search box above
  // it asks its `data-search` URL for others by name, e-mail or reference, and puts the matches
  // in the list (keeping what is chosen).

  function searchable(select) {
    var url = select.getAttribute("data-search");
    var label = document.querySelector('label[for="' + select.id + '"]');
    var box = document.createElement("input");
    box.type = "search";
    box.id = select.id + "-search";
    box.className = "pl-picker-search";
    box.autocomplete = "off";
    box.placeholder = "Search by name, e-mail or reference";
    box.setAttribute("aria-label", "Search for " + (label ? label.textContent : "a contact"));
    var status = document.createElement("p");
    status.className = "pl-hint";
    status.id = select.id + "-search-status";
    status.setAttribute("aria-live", "polite");
    select.parentNode.insertBefore(box, select);
    select.parentNode.insertBefore(status, select);

    function show(choices) {
      var keep = Array.prototype.filter.call(select.options, function (o) {
        return o.value === "" || o.selected;
      });
      select.textContent = "";
      keep.forEach(function (o) {
        select.appendChild(o);
      });
      choices.forEach(function (c) {
        if (keep.some(function (o) { return o.value === c.value; })) {
          return;
        }
        var option = document.createElement("option");
        option.value = c.value;
        option.textContent = c.label;
        select.appendChild(option);
      });
      status.textContent =
        choices.length === 0
          ? "No contacts match."
          : choices.length + (choices.length === 1 ? " contact found: choose it in the list." : " contacts found: choose one in the list.");
    }

    askAsYouType(
      box,
      2,
      function (typed) {
        return url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(typed);
      },
      function (answer) {
        show(answer.choices || []);
      },
      function () {
        status.textContent = "The search is not answering; choose from the list or type an e-mail below.";
      },
      function () {
        status.textContent = "";
      }
    );
  }

  document.querySelectorAll("select[data-search]").forEach(searchable);
})();
