"""The privacy configuration refuses what it cannot mean, naming the file and the entry."""

from __future__ import annotations

import shutil

import pytest

from privacy.config import CONFIG_DIR, PrivacyConfigError, load_data_map, load_disclosures


@pytest.fixture
def config(tmp_path):
    for name in ("data_map.yml", "disclosures.yml", "register.yml"):
        shutil.copy(CONFIG_DIR / name, tmp_path / name)
    return tmp_path


def _edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_shipped_configuration_loads(config):
    disclosures = load_disclosures(config)
    assert disclosures.rules and disclosures.recipients and disclosures.flows


def test_a_category_outside_fideslangs_taxonomy_is_refused(config):
    _edit(config / "data_map.yml", "hetu: user.government_id.national_identification_number", "hetu: user.hetu")
    with pytest.raises(PrivacyConfigError, match=r"data_map.yml: staging.stg_crm__customers.hetu: 'user.hetu'"):
        load_data_map(config)


def test_an_unquoted_norway_is_refused(config):
    _edit(config / "disclosures.yml", '"NO"', "NO")
    with pytest.raises(PrivacyConfigError, match=r"disclosures\.yml: countries: False"):
        load_disclosures(config)


def test_a_disclosed_field_missing_from_the_data_map_is_refused(config):
    _edit(config / "disclosures.yml", "fields: [holder_first_name,", "fields: [holder_birthday, holder_first_name,")
    with pytest.raises(PrivacyConfigError, match="holder_birthday"):
        load_disclosures(config)
