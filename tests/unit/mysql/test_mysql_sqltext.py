"""Definition rewriting: qualifiers and DEFINERs removed on tokens, never inside literals."""

from __future__ import annotations

import pytest

from dr.mysql.objects import qualified_name
from dr.mysql.sqltext import (
    identifiers,
    order_views,
    quote_ident,
    remove_definer,
    strip_qualifier,
    tokenize,
)


@pytest.mark.parametrize("sql", [
    "SELECT 'a''b\\'c', \"x\\\"y\", `we``ird` FROM t -- comment\n/* c */ WHERE a=1 # x",
    "CREATE VIEW v AS /*!50001 select 1 */ select `d`.`t`.`c` from `d`.`t`",
    "unterminated 'string",
    "",
])
def test_tokenize_round_trips(sql):
    assert "".join(t.text for t in tokenize(sql)) == sql


def test_strip_view_definition():
    sql = ("CREATE ALGORITHM=UNDEFINED VIEW `sakila`.`v` AS select `sakila`.`film`.`id` AS "
           "`id`,'sakila.film `sakila`.x' AS `lit` from (`sakila`.`film` join `other`.`t`) "
           "where `x`.`sakila` = 1")
    assert strip_qualifier(sql, "sakila") == (
        "CREATE ALGORITHM=UNDEFINED VIEW `v` AS select `film`.`id` AS "
        "`id`,'sakila.film `sakila`.x' AS `lit` from (`film` join `other`.`t`) "
        "where `x`.`sakila` = 1")


def test_strip_user_written_bodies():
    body = ("BEGIN SELECT COUNT(*) INTO n FROM sakila.film WHERE title <> \"sakila.film\"; "
            "CALL `sakila`.p(); -- sakila.x in a comment\n SET x = sakila.f(1); END")
    assert strip_qualifier(body, "sakila") == (
        "BEGIN SELECT COUNT(*) INTO n FROM film WHERE title <> \"sakila.film\"; "
        "CALL p(); -- sakila.x in a comment\n SET x = f(1); END")


def test_strip_is_case_sensitive_and_exact():
    assert strip_qualifier("select Sakila.t.c, sakila2.t from sakila_x.t", "sakila") == \
        "select Sakila.t.c, sakila2.t from sakila_x.t"


def test_strip_ambiguous_database_named_like_a_table():
    # `shop` is both the database and a table with a column `shop`
    sql = ("select `shop`.`shop`.`shop` AS `a`,`shop`.`shop` AS `b`,`shop`.`items`.`id` AS `c` "
           "from `shop`.`shop` join `shop`.`items`")
    out = strip_qualifier(sql, "shop", ambiguous=True, objects={"shop", "items"},
                          columns={"id", "shop"})
    assert out == ("select `shop`.`shop` AS `a`,`shop`.`shop` AS `b`,`items`.`id` AS `c` "
                   "from `shop` join `items`")


def test_strip_ansi_quotes_mode():
    sql = 'SELECT "shop"."t"."c" FROM "shop"."t" WHERE s = \'shop.t\''
    assert strip_qualifier(sql, "shop", sql_mode="ANSI_QUOTES") == \
        'SELECT "t"."c" FROM "t" WHERE s = \'shop.t\''


@pytest.mark.parametrize("sql, expected", [
    ("CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW `v` AS "
     "select 1", "CREATE ALGORITHM=UNDEFINED SQL SECURITY DEFINER VIEW `v` AS select 1"),
    ("CREATE DEFINER=`app`@`%` PROCEDURE `p`() SELECT 'DEFINER=`x`@`y`'",
     "CREATE PROCEDURE `p`() SELECT 'DEFINER=`x`@`y`'"),
    ("CREATE DEFINER = 'app'@'10.0.0.%' TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1",
     "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW SET @a = 1"),
    ("CREATE DEFINER=CURRENT_USER() FUNCTION f() RETURNS INT RETURN 1",
     "CREATE FUNCTION f() RETURNS INT RETURN 1"),
    ("CREATE DEFINER=CURRENT_USER SQL SECURITY INVOKER VIEW actor_info AS SELECT 1",
     "CREATE SQL SECURITY INVOKER VIEW actor_info AS SELECT 1"),
    ("CREATE DEFINER=`role_x` EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1",
     "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1"),
    ("CREATE VIEW v AS SELECT definer FROM t", "CREATE VIEW v AS SELECT definer FROM t"),
])
def test_remove_definer(sql, expected):
    assert remove_definer(sql) == expected


def test_order_views_puts_dependencies_first():
    defs = {"c": "select * from `b`", "b": "select * from `a` join `base`",
            "a": "select 1 from `base`", "z": "select 'c' from `base`"}
    order = order_views(defs)
    assert order.index("a") < order.index("b") < order.index("c")
    assert sorted(order) == ["a", "b", "c", "z"]
    cyclic = order_views({"x": "select * from y", "y": "select * from x"})
    assert sorted(cyclic) == ["x", "y"]


def test_identifiers_and_quoting():
    assert identifiers("select `a b`.c from \"lit\"") >= {"a b", "c", "select", "from"}
    assert quote_ident("we`ird") == "`we``ird`"


def test_qualified_name_detects_another_database():
    assert qualified_name("CREATE VIEW `mysql`.`v` AS select 1", "VIEW") == "mysql"
    assert qualified_name("CREATE VIEW `v` AS select `a`.`b` from x", "VIEW") is None
    assert qualified_name("CREATE FUNCTION IF NOT EXISTS db.f() RETURNS INT RETURN 1",
                          "FUNCTION") == "db"


def test_deferred_index_plan():
    from dr.mysql.indexes import MIN_ROWS, plan, referenced_tables

    ddl = ("CREATE TABLE `t` (\n  `id` int NOT NULL AUTO_INCREMENT,\n"
           "  `c` varchar(9) DEFAULT 'a,b) KEY',\n  PRIMARY KEY (`id`),\n"
           "  UNIQUE KEY `u` (`c`),\n  KEY `k` (`c`(3), `id`),\n  KEY `ai` (`id`, `c`),\n"
           "  FULLTEXT KEY `f` (`c`)\n) ENGINE=InnoDB")
    create, deferred = plan(ddl, "InnoDB", MIN_ROWS, referenced=False)
    assert deferred == ["UNIQUE KEY `u` (`c`)", "KEY `k` (`c`(3), `id`)"]
    assert "KEY `ai`" in create and "FULLTEXT KEY `f`" in create and "DEFAULT 'a,b) KEY'" in create
    assert "UNIQUE" not in create and create.endswith(") ENGINE=InnoDB")
    assert plan(ddl, "InnoDB", MIN_ROWS - 1, referenced=False) == (ddl, [])
    assert plan(ddl, "MyISAM", MIN_ROWS, referenced=False) == (ddl, [])
    assert plan(ddl, "InnoDB", MIN_ROWS, referenced=True) == (ddl, [])
    fk = ddl.replace("  FULLTEXT", "  CONSTRAINT `x` FOREIGN KEY (`c`) REFERENCES `p` (`c`),\n"
                                   "  FULLTEXT")
    assert plan(fk, "InnoDB", MIN_ROWS, referenced=False) == (fk, [])
    assert referenced_tables([fk]) == {"p"}
