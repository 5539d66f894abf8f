"""The line database and the warehouse workflows.

Modules, by what they model:

- :mod:`~provisioning.database`: opening SQLite / PostgreSQL, transactions, Alembic migrations;
- :mod:`~provisioning.models`: the tables (SQLAlchemy 2 typed models);
- :mod:`~provisioning.lifecycle`: card and line states, the rules of docs/domain.md;
- :mod:`~provisioning.stockfile` / :mod:`~provisioning.stock`: vendor stock files, import;
- :mod:`~provisioning.lines`: lines to provision;
- :mod:`~provisioning.workflows`: provision, reissue, form-factor change, return, loss,
  suspend, resume, cancel;
- :mod:`~provisioning.records` / :mod:`~provisioning.exports`: show, IMEI list, shift report;
- :mod:`~provisioning.secrets` / :mod:`~provisioning.keys`: sealed card secrets, the key;
- :mod:`~provisioning.audit`: the hash-chained audit trail;
- :mod:`~provisioning.cardfacts`, :mod:`~provisioning.reader`, :mod:`~provisioning.devices`:
  the seams to the card in the reader and to a bundled modem.
"""
